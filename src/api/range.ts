import type { ByteRange } from '../blobs/blob-store.js';

/**
 * The bytes an HTTP `Range` header asks of a body of `size` bytes (RFC 9110 §14): one range, clipped to the body;
 * `'unsatisfiable'` when it starts past the end (416); null to send the whole body — no header, a unit other than
 * bytes, a malformed value, or several ranges (which a server may answer whole).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '');
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    // A suffix: the last n bytes.
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? Infinity : Number(m[2]);
  if (end < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}
