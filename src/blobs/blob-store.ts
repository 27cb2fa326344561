import { PassThrough, type Readable } from 'node:stream';
import { sharedIdentity } from '../core/errors.js';

export interface BlobInfo {
  key: string;
  /** Bytes. */
  size: number;
}

/** Bytes `start` to `end` of a blob, both included, counted from 0. */
export interface ByteRange {
  start: number;
  end: number;
}

export class BlobNotFoundError extends Error {
  override name = 'BlobNotFoundError';
  constructor(readonly key: string) {
    super(`no blob at ${JSON.stringify(key)}`);
  }
}

/**
 * Where audio bytes live: the local filesystem by default, Cloud Storage in production. Keys are `/`-separated
 * relative paths (`uploads/{audioId}/{index}`).
 */
export interface BlobStore {
  /** Writes (or replaces) a blob from a buffer or a stream; streams are never held in memory whole. */
  put(key: string, body: Buffer | Readable, options?: { contentType?: string }): Promise<BlobInfo>;
  /**
   * A stream of the blob's bytes, or of bytes `start` to `end` (both included, as HTTP ranges count them); it errors
   * with `BlobNotFoundError` when there is none.
   */
  read(key: string, range?: ByteRange): Readable;
  stat(key: string): Promise<BlobInfo | null>;
  /** Blobs whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<BlobInfo[]>;
  /** Removes a blob; no error when there is none. */
  delete(key: string): Promise<void>;
  /** Writes the concatenation of `sources`, in order, to `dest` (Cloud Storage: server-side compose). */
  concat(sources: readonly string[], dest: string): Promise<BlobInfo>;
  /** The blob's file on this machine, for stores that keep blobs as files; tools then read it in place. */
  localPath?(key: string): string;
  /** `gs://bucket/object`, for stores in Cloud Storage. */
  gcsUri?(key: string): string;
}

const KEY = /^(?!\/)(?!.*\/\/)(?!.*(?:^|\/)\.\.?(?:\/|$))[\w.\-/]{1,512}(?<!\/)$/;

/** Keys are relative paths of letters, digits, `_ . - /` without `.`/`..` segments or empty parts. */
export function checkKey(key: string): string {
  if (typeof key !== 'string' || !KEY.test(key)) throw new TypeError(`invalid blob key ${JSON.stringify(key)}`);
  return key;
}

/** Pipes `source` through, turning its "missing" error into `BlobNotFoundError`. */
export function readWithNotFound(key: string, source: Readable, isMissing: (error: unknown) => boolean): Readable {
  const out = new PassThrough();
  source.on('error', (error) => out.destroy(isMissing(error) ? new BlobNotFoundError(key) : error));
  return source.pipe(out);
}

sharedIdentity(BlobNotFoundError, 'BlobNotFoundError');
