// 1,200 malformed requests from a seeded generator: wrong types, huge numbers, unknown fields, bad ids and cursors,
// truncated and oversized bodies, wrong content types, bad tokens. Every one must be answered 4xx with a message,
// none 5xx, and nothing in Firestore or the blob store may change.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DocumentReference, Firestore } from 'firebase-admin/firestore';
import pLimit from 'p-limit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { seededRandom } from '../src/text/random.js';
import { sha256, startApi, type ApiHarness, type User } from './api-harness.js';

let h: ApiHarness;
let alice: User;
let audioId: string;
let taskId: string;
let cursor: string;

beforeAll(async () => {
  h = await startApi('fuzz', { maxChunkBytes: 16 * 1024 });
  alice = await h.signUp('alice');
  // Real state the malformed requests aim at: an upload in progress, a finished one being processed, and a cursor.
  const bytes = Buffer.alloc(2000, 7);
  audioId = await h.upload(alice, bytes, 1000, [0]);
  const other = await h.upload(alice, bytes, 2000);
  taskId = (await h.call(alice, 'POST', '/audio/process', { audioId: other })).body.taskId;
  cursor = (await h.call(alice, 'GET', '/tasks?limit=1')).body.nextCursor ?? Buffer.from('{"s":1,"n":0,"id":"x"}').toString('base64url');
}, 60_000);
afterAll(() => h?.close());

/** Every document path under the project with its update time, and every blob with its size. */
async function storeState(db: Firestore, blobDir: string): Promise<Map<string, string>> {
  const state = new Map<string, string>();
  const walk = async (refs: DocumentReference[]) => {
    for (const ref of refs) {
      const snap = await ref.get();
      state.set(ref.path, snap.exists ? snap.updateTime!.toDate().toISOString() : 'missing');
      for (const sub of await ref.listCollections()) await walk(await sub.listDocuments());
    }
  };
  for (const c of await db.listCollections()) await walk(await c.listDocuments());
  const files = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) await files(p);
      else state.set(`blob:${p}`, String((await stat(p)).size));
    }
  };
  await files(blobDir);
  return state;
}

interface Malformed {
  kind: string;
  method: string;
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  /** Send without a token, or with this one. */
  token?: string | null;
}

const BAD_IDS = ['', 'a'.repeat(201), 'ünïcode', 'a b', '..', '%2F..%2Fetc', 'x%00y', '%E0%A4%A', '{id}', '*', "id'or'1'='1", '-'.repeat(300)];
const BAD_NUMBERS: unknown[] = [-1, 0.5, 1e308, -1e308, '7', null, true, [], {}, 'NaN', 2 ** 53 + 1, 1e-300];
const BAD_STRINGS: unknown[] = [42, null, true, [], {}, '', 'x'.repeat(10_000), ['a'], { $gt: '' }];

function generator(random: () => number, state: { audioId: string; taskId: string; cursor: string }): () => Malformed {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const json = (v: unknown) => ({ body: JSON.stringify(v), headers: { 'content-type': 'application/json' } });
  const upload = { contentType: 'audio/wav', chunkCount: 2, totalBytes: 2000, sha256: 'a'.repeat(64) };
  const process = { audioId: state.audioId };
  const makers: Array<() => Malformed> = [
    // Wrong types, huge numbers and unknown fields in JSON bodies.
    () => ({ kind: 'upload: bad number', method: 'POST', path: '/audio', ...json({ ...upload, [pick(['chunkCount', 'totalBytes'])]: pick(BAD_NUMBERS) }) }),
    () => ({ kind: 'upload: bad string', method: 'POST', path: '/audio', ...json({ ...upload, [pick(['contentType', 'sha256'])]: pick(BAD_STRINGS) }) }),
    () => ({ kind: 'upload: unknown field', method: 'POST', path: '/audio', ...json({ ...upload, [pick(['ownerUid', 'status', '__proto__', 'extra'])]: 'x' }) }),
    () => {
      const missing = pick(Object.keys(upload));
      return { kind: 'upload: missing field', method: 'POST', path: '/audio', ...json(Object.fromEntries(Object.entries(upload).filter(([k]) => k !== missing))) };
    },
    () => ({ kind: 'upload: not an object', method: 'POST', path: '/audio', ...json(pick([[], null, 'audio', 12, [upload]])) }),
    () => ({ kind: 'upload: more chunks than bytes', method: 'POST', path: '/audio', ...json({ ...upload, chunkCount: 50, totalBytes: 10 }) }),
    () => ({ kind: 'process: bad audioId', method: 'POST', path: '/audio/process', ...json({ audioId: pick([...BAD_IDS, ...BAD_STRINGS]) }) }),
    () => ({ kind: 'process: bad option', method: 'POST', path: '/audio/process', ...json({ ...process, [pick(['priority', 'stages', 'idempotencyKey'])]: pick([0, 11, 1e308, 'high', [], ['nope'], '', 'x'.repeat(300), {}]) }) }),
    () => ({ kind: 'process: unknown field', method: 'POST', path: '/audio/process', ...json({ ...process, [pick(['ownerUid', 'id', 'queue'])]: 'x' }) }),
    () => ({ kind: 'process: unknown audio', method: 'POST', path: '/audio/process', ...json({ audioId: `missing-${Math.floor(random() * 1e9)}` }) }),
    () => ({ kind: 'process: missing chunk', method: 'POST', path: '/audio/process', ...json({ audioId: state.audioId }) }),
    // Truncated, oversized and mistyped bodies.
    () => {
      const full = JSON.stringify({ ...upload, contentType: 'audio/wav' });
      return { kind: 'truncated JSON', method: 'POST', path: pick(['/audio', '/audio/process']), body: full.slice(0, 1 + Math.floor(random() * (full.length - 2))), headers: { 'content-type': 'application/json' } };
    },
    () => ({ kind: 'oversized JSON', method: 'POST', path: pick(['/audio', '/audio/process']), ...json({ ...upload, pad: 'x'.repeat(70_000 + Math.floor(random() * 50_000)) }) }),
    () => ({ kind: 'wrong content type', method: 'POST', path: pick(['/audio', '/audio/process']), body: JSON.stringify(upload), headers: { 'content-type': pick(['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'audio/wav']) } }),
    () => ({ kind: 'no body', method: 'POST', path: pick(['/audio', '/audio/process']) }),
    () => ({ kind: 'JSON that is not JSON', method: 'POST', path: '/audio', body: pick(['{', '}', '{"a":}', 'null null', "{'a':1}", '\u0000', '[1,2']), headers: { 'content-type': 'application/json' } }),
    // Chunks: bad ids and indexes, checksums, content types, sizes.
    () => ({ kind: 'chunk: bad audio id', method: 'PUT', path: `/audio/${encodeURIComponent(pick(BAD_IDS.filter(Boolean)))}/chunks/0`, body: Buffer.alloc(10), headers: { 'content-type': 'application/octet-stream', 'x-chunk-sha256': sha256(Buffer.alloc(10)) } }),
    () => ({ kind: 'chunk: bad index', method: 'PUT', path: `/audio/${state.audioId}/chunks/${pick(['-1', '1.5', 'x', '1e10', '99999999', '2', '0x1', '%20', '1e0', '+1', '01%20'])}`, body: Buffer.alloc(10), headers: { 'content-type': 'application/octet-stream', 'x-chunk-sha256': sha256(Buffer.alloc(10)) } }),
    () => ({ kind: 'chunk: bad checksum', method: 'PUT', path: `/audio/${state.audioId}/chunks/1`, body: Buffer.alloc(10, 1), headers: { 'content-type': 'application/octet-stream', 'x-chunk-sha256': pick(['', 'abc', 'g'.repeat(64), sha256('other'), sha256(Buffer.alloc(10, 1)).slice(1)]) } }),
    () => ({ kind: 'chunk: no checksum', method: 'PUT', path: `/audio/${state.audioId}/chunks/1`, body: Buffer.alloc(10, 1), headers: { 'content-type': 'application/octet-stream' } }),
    () => ({ kind: 'chunk: wrong content type', method: 'PUT', path: `/audio/${state.audioId}/chunks/1`, body: Buffer.alloc(10, 1), headers: { 'content-type': pick(['application/json', 'text/plain', 'image/png']), 'x-chunk-sha256': sha256(Buffer.alloc(10, 1)) } }),
    () => {
      const big = Buffer.alloc(16 * 1024 + 1 + Math.floor(random() * 4096), 3);
      return { kind: 'chunk: oversized', method: 'PUT', path: `/audio/${state.audioId}/chunks/1`, body: big, headers: { 'content-type': 'application/octet-stream', 'x-chunk-sha256': sha256(big) } };
    },
    () => ({ kind: 'chunk: empty', method: 'PUT', path: `/audio/${state.audioId}/chunks/1`, body: Buffer.alloc(0), headers: { 'content-type': 'application/octet-stream', 'x-chunk-sha256': sha256(Buffer.alloc(0)) } }),
    // Task routes: bad ids, queries and cursors.
    () => ({ kind: 'task: bad id', method: pick(['GET', 'POST']), path: `/tasks/${encodeURIComponent(pick(BAD_IDS.filter(Boolean)))}${pick(['', '/cancel', '/retry'])}` }),
    () => ({ kind: 'task: unknown id', method: 'GET', path: `/tasks/missing-${Math.floor(random() * 1e9)}` }),
    () => ({ kind: 'task: broken percent-encoding', method: 'GET', path: pick(['/tasks/%E0%A4%A', '/tasks/%', '/audio/%ZZ/results', '/tasks/%C0%AF']) }),
    () => ({ kind: 'task: retry a running one', method: 'POST', path: `/tasks/${state.taskId}/retry` }),
    () => ({ kind: 'list: bad limit', method: 'GET', path: `/tasks?limit=${encodeURIComponent(String(pick(['0', '-5', '101', '1e9', 'abc', '1.5', '', 'Infinity', '0x10', ' 5', '1e1'])))}` }),
    () => ({ kind: 'list: repeated limit', method: 'GET', path: '/tasks?limit=1&limit=2' }),
    () => ({ kind: 'list: bad status', method: 'GET', path: `/tasks${pick(['', '/count'])}?status=${pick(['done', 'RUNNING', '', 'pending,running'])}` }),
    () => ({ kind: 'list: unknown field', method: 'GET', path: `/tasks${pick(['', '/count'])}?${pick(['colour=red', 'orderBy=createdAt', 'ownerUid[$ne]=x', 'where=1'])}` }),
    () => ({ kind: 'list: other owner', method: 'GET', path: `/tasks${pick(['', '/count'])}?ownerUid=someone-else` }),
    () => {
      const forged = pick([
        'abc',
        '!!!',
        'x'.repeat(600),
        Buffer.from('not json').toString('base64url'),
        Buffer.from('{"s":"a","n":0,"id":"x"}').toString('base64url'),
        Buffer.from('[]').toString('base64url'),
        state.cursor.slice(0, -3),
        `${state.cursor}AAAA`,
      ]);
      return { kind: 'list: forged cursor', method: 'GET', path: `/tasks?cursor=${encodeURIComponent(forged)}` };
    },
    () => ({ kind: 'results: bad or unknown id', method: 'GET', path: `/audio/${encodeURIComponent(pick([...BAD_IDS.filter(Boolean), 'missing-1']))}/results` }),
    // Tokens and routes.
    () => ({ kind: 'bad token', method: 'GET', path: `/tasks/${state.taskId}`, token: pick([null, '', 'x', 'eyJhbGciOiJub25lIn0.e30.', 'Bearer', 'a'.repeat(5000)]) }),
    () => ({ kind: 'unknown route', method: pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH']), path: pick(['/', '/admin', '/tasks/x/y/z', '/audio/x/chunks', '/.env', '/audio/x/chunks/0/extra']) }),
    () => ({ kind: 'wrong method', method: pick(['DELETE', 'PATCH', 'PUT']), path: pick(['/audio', '/tasks', `/tasks/${state.taskId}`, '/audio/process', '/healthz']) }),
  ];
  return () => pick(makers)();
}

it('answers 1,200 malformed requests 4xx with a message, never 5xx, and changes nothing', async () => {
  const before = await storeState(h.db, h.blobDir);
  const next = generator(seededRandom(5), { audioId, taskId, cursor });
  const limit = pLimit(8);
  const byKind = new Map<string, number>();
  const bad: string[] = [];
  await Promise.all(
    Array.from({ length: 1200 }, () => next()).map((m) =>
      limit(async () => {
        byKind.set(m.kind, (byKind.get(m.kind) ?? 0) + 1);
        const headers = { ...(m.headers ?? {}), ...(m.token !== undefined ? (m.token === null ? {} : { authorization: `Bearer ${m.token}` }) : { authorization: `Bearer ${alice.token}` }) };
        const res = await fetch(`${h.api.url}${m.path}`, { method: m.method, headers, ...(m.body !== undefined ? { body: m.body } : {}) });
        const text = await res.text();
        let message: unknown;
        try {
          message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
        } catch {
          // not JSON: counted as missing its message
        }
        if (res.status < 400 || res.status >= 500 || typeof message !== 'string' || message.length === 0) bad.push(`${m.kind}: ${m.method} ${m.path.slice(0, 80)} → ${res.status} ${text.slice(0, 160)}`);
      }),
    ),
  );
  expect(bad).toEqual([]);
  expect(byKind.size).toBeGreaterThanOrEqual(30); // every kind of malformation was tried
  expect(await storeState(h.db, h.blobDir)).toEqual(before);
}, 120_000);
