// The HTTP API against the Firestore and Auth emulators, with real ID tokens minted by the Auth emulator. No executor
// runs here (a submit-only API in front of workers elsewhere): a started pipeline is running, its first stage pending.
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIO_PIPELINE } from '../src/audio/pipeline.js';
import { expireUploads, getAudio } from '../src/audio/record.js';
import { activeSlots } from '../src/core/slots.js';
import { createApi } from '../src/api/index.js';
import { saveTranscript } from '../src/audio/transcript-store.js';
import { sha256 as sha, startApi, type ApiHarness, type User } from './api-harness.js';

let h: ApiHarness;
let alice: User;
let bob: User;
let admin: User;

beforeAll(async () => {
  h = await startApi('api', { maxActivePipelinesPerUser: 3, maxUploadsInFlightPerUser: 20, maxChunkBytes: 64 * 1024 });
  [alice, bob, admin] = await Promise.all([h.signUp('alice'), h.signUp('bob'), h.signUp('admin', { admin: true })]);
});
afterAll(() => h.close());

const call = (...args: Parameters<ApiHarness['call']>) => h.call(...args);
const signUp = (name: string) => h.signUp(name);

const upload = (...args: Parameters<ApiHarness['upload']>) => h.upload(...args);

describe('auth', () => {
  it('answers 401 with a clear message for a missing, malformed or forged token', async () => {
    const missing = await call(null, 'GET', '/tasks');
    expect(missing.status).toBe(401);
    expect(missing.body.error).toEqual({ code: 'unauthenticated', message: expect.stringContaining('Authorization: Bearer'), details: null });
    expect((await call(null, 'GET', '/tasks', undefined, { authorization: 'Basic abc' })).body.error.message).toContain('must be "Bearer');
    const forged = await call({ uid: 'x', token: 'not-a-jwt' }, 'GET', '/tasks');
    expect(forged.status).toBe(401);
    expect(forged.body.error.message).toMatch(/ID token/);
  });

  it('serves /healthz, /metrics and /openapi.json without a token', async () => {
    const health = await call(null, 'GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ ok: true, firestoreMs: expect.any(Number) });
    const metrics = await call(null, 'GET', '/metrics');
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    expect(metrics.body).toContain('# TYPE fireflow_store_writes_total counter');
    expect(metrics.body).toMatch(/^fireflow_store_writes_total\{kind="create"\} \d+$/m);
  });
});

describe('uploads and processing', () => {
  const bytes = randomBytes(10_000);

  it('takes chunks with checksums, idempotently, and refuses wrong ones', async () => {
    const created = await call(alice, 'POST', '/audio', { contentType: 'audio/wav', chunkCount: 3, totalBytes: bytes.length, sha256: sha(bytes) });
    expect(created).toMatchObject({ status: 201, body: { audioId: expect.any(String), status: 'uploading', chunkCount: 3 } });
    const id = created.body.audioId as string;
    const chunk = bytes.subarray(0, 4000);
    const put = (user: User, index: number, body: Buffer, headers: Record<string, string> = {}) =>
      call(user, 'PUT', `/audio/${id}/chunks/${index}`, body, { 'content-type': 'application/octet-stream', 'x-chunk-sha256': sha(body), ...headers });

    expect((await put(alice, 0, chunk)).body).toEqual({ audioId: id, index: 0, bytes: 4000 });
    expect((await put(alice, 0, chunk)).status).toBe(200); // a retried PUT is harmless
    const corrupted = await put(alice, 1, chunk, { 'x-chunk-sha256': sha(Buffer.from('other')) });
    expect(corrupted.status).toBe(400);
    expect(corrupted.body.error.message).toContain('does not match its checksum');
    expect((await put(alice, 1, chunk, { 'x-chunk-sha256': '' })).body.error.details.issues[0].path).toBe('headers.x-chunk-sha256');
    expect((await put(alice, 3, chunk)).body.error.details.issues).toEqual([{ path: 'params.index', message: 'must be below 3, got 3' }]);
    expect((await put(alice, 1, chunk, { 'content-type': 'application/json' })).status).toBe(415);
    const big = await put(alice, 1, randomBytes(64 * 1024 + 1));
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('payload-too-large');
    expect((await put(bob, 1, chunk)).status).toBe(404); // someone else's upload does not exist for bob

    // A missing chunk stops processing with a 409 that names it; the upload stays open.
    await put(alice, 2, bytes.subarray(8000));
    const early = await call(alice, 'POST', '/audio/process', { audioId: id });
    expect(early.status).toBe(409);
    expect(early.body.error.message).toContain('chunk 1 of 3 missing');
  });

  it('starts the pipeline once per idempotency key, estimates its time, and closes the upload', async () => {
    const id = await upload(alice, bytes, 4000);
    const first = await call(alice, 'POST', '/audio/process', { audioId: id, idempotencyKey: 'k-1', priority: 7 });
    expect(first.status).toBe(202);
    expect(first.body).toEqual({ taskId: expect.any(String), audioId: id, status: 'running', estimatedSeconds: expect.any(Number) });
    expect(first.body.estimatedSeconds).toBeGreaterThanOrEqual(1);
    const again = await call(alice, 'POST', '/audio/process', { audioId: id, idempotencyKey: 'k-1' });
    expect(again.body.taskId).toBe(first.body.taskId);
    const task = await call(alice, 'GET', `/tasks/${first.body.taskId}`);
    expect(task.body).toMatchObject({ id: first.body.taskId, type: AUDIO_PIPELINE, status: 'running', priority: 7, ownerUid: alice.uid, params: { audioId: id } });
    expect(task.body).not.toHaveProperty('writeToken');

    const other = await upload(alice, bytes, 5000);
    expect((await call(alice, 'POST', '/audio/process', { audioId: other, idempotencyKey: 'k-1' })).status).toBe(409);
    const late = await call(alice, 'PUT', `/audio/${id}/chunks/0`, bytes.subarray(0, 4000), { 'content-type': 'application/octet-stream', 'x-chunk-sha256': sha(bytes.subarray(0, 4000)) });
    expect(late.status).toBe(409);
    expect(late.body.error.message).toContain('finalised');
    expect((await call(bob, 'POST', '/audio/process', { audioId: id })).status).toBe(404);
    const results = await call(alice, 'GET', `/audio/${id}/results`);
    expect(results.body).toMatchObject({ audio: { id, status: 'processing' }, transcript: null, chunks: null, graph: null, chapters: null, questions: null });
  });

  it('streams the recording as transcribed to its owner only, and says when it is not reassembled yet', async () => {
    const id = await upload(alice, bytes, 4000);
    const notYet = await call(alice, 'GET', `/audio/${id}/speech`);
    expect(notYet.status).toBe(409);
    expect(notYet.body.error.message).toContain('has not been reassembled yet');
    // What the reassembly stage leaves behind (no executor runs in this file).
    const wav = randomBytes(50_000);
    await h.blobs.put(`audio/${id}/speech.wav`, wav);
    await h.db.doc(`audio/${id}`).update({ speechKey: `audio/${id}/speech.wav` });
    const res = await fetch(`${h.api.url}/audio/${id}/speech`, { headers: { authorization: `Bearer ${alice.token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/wav');
    expect(res.headers.get('content-length')).toBe('50000');
    expect(Buffer.from(await res.arrayBuffer()).equals(wav)).toBe(true);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect((await call(bob, 'GET', `/audio/${id}/speech`)).status).toBe(404);

    // Ranges (what a player seeking in the recording asks for): 206 with exactly those bytes.
    const ranged = (range: string, user = alice) => fetch(`${h.api.url}/audio/${id}/speech`, { headers: { authorization: `Bearer ${user.token}`, range } });
    for (const [range, start, end] of [['bytes=1000-1999', 1000, 1999], ['bytes=49990-', 49990, 49999], ['bytes=-5', 49995, 49999], ['bytes=49000-99999', 49000, 49999]] as const) {
      const part = await ranged(range);
      expect(part.status, range).toBe(206);
      expect(part.headers.get('content-range')).toBe(`bytes ${start}-${end}/50000`);
      expect(part.headers.get('content-length')).toBe(String(end - start + 1));
      expect(Buffer.from(await part.arrayBuffer()).equals(wav.subarray(start, end + 1)), range).toBe(true);
    }
    const outside = await ranged('bytes=50000-');
    expect(outside.status).toBe(416);
    expect(outside.headers.get('content-range')).toBe('bytes */50000');
    expect(((await outside.json()) as { error: { code: string } }).error.code).toBe('range-not-satisfiable');
    expect((await ranged('bytes=0-1,5-6')).status).toBe(200); // several ranges: the whole recording
    expect((await ranged('bytes=0-99', bob)).status).toBe(404);

    // A playback link, for an <audio src> that cannot send the token: the owner's to ask for, anyone's to play until it expires.
    expect((await call(bob, 'POST', `/audio/${id}/playback`)).status).toBe(404);
    const link = await call(alice, 'POST', `/audio/${id}/playback`);
    expect(link.status).toBe(200);
    expect(link.body.path).toMatch(new RegExp(`^/audio/${id}/stream\\?access=\\d+\\.[\\w-]{43}$`));
    expect(Date.parse(link.body.expiresAt) - Date.now()).toBeGreaterThan(3_600_000);
    const streamed = await fetch(`${h.api.url}${link.body.path}`);
    expect(streamed.status).toBe(200);
    expect(Buffer.from(await streamed.arrayBuffer()).equals(wav)).toBe(true);
    const part = await fetch(`${h.api.url}${link.body.path}`, { headers: { range: 'bytes=25000-25009' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(wav.subarray(25000, 25010))).toBe(true);
    const other = await upload(alice, bytes, 4000);
    const [exp, mac] = link.body.path.split('access=')[1].split('.');
    for (const forged of [`/audio/${other}/stream?access=${exp}.${mac}`, `/audio/${id}/stream?access=${Number(exp) + 60}.${mac}`, `/audio/${id}/stream?access=x`]) {
      const refused = await fetch(`${h.api.url}${forged}`);
      expect(refused.status, forged).toBe(401);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/not valid or has expired/);
    }
  });

  it('serves subtitles of the stored transcript as WebVTT and SubRip to its owner only, and says when there is none yet', async () => {
    const id = await upload(alice, bytes, 4000);
    expect((await call(alice, 'GET', `/audio/${id}/subtitles.vtt`)).status).toBe(409);
    const words = 'Hello there. This is a <test> of subtitles, which are cut at sentence ends.'.split(' ').map((word, i) => ({ word, start: 0.5 + i * 0.4, end: 0.8 + i * 0.4, confidence: 0.9 }));
    await saveTranscript(h.db, id, { text: words.map((w) => w.word).join(' '), words, language: 'en', engine: 'test' });
    const get = (ext: string, user = alice) => fetch(`${h.api.url}/audio/${id}/subtitles.${ext}`, { headers: { authorization: `Bearer ${user.token}` } });
    const vtt = await get('vtt');
    expect(vtt.status).toBe(200);
    expect(vtt.headers.get('content-type')).toBe('text/vtt; charset=utf-8');
    expect(await vtt.text()).toBe('WEBVTT\n\n1\n00:00:00.500 --> 00:00:01.300\nHello there.\n\n2\n00:00:01.300 --> 00:00:06.000\nThis is a &lt;test&gt; of subtitles,\nwhich are cut at sentence ends.\n');
    const srt = await get('srt');
    expect(srt.headers.get('content-type')).toBe('application/x-subrip; charset=utf-8');
    expect(await srt.text()).toMatch(/^1\n00:00:00,500 --> 00:00:01,300\nHello there\.\n\n2\n/);
    expect((await get('vtt', bob)).status).toBe(404);
  });

  it('answers 429 with Retry-After when a user has too many pipelines pending or running', async () => {
    const user = await signUp('busy');
    for (let i = 0; i < 3; i++) expect((await call(user, 'POST', '/audio/process', { audioId: await upload(user, bytes, 5000) })).status).toBe(202);
    const over = await call(user, 'POST', '/audio/process', { audioId: await upload(user, bytes, 5000) });
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toBe('30');
    expect(over.body.error).toMatchObject({ code: 'resource-exhausted', details: { active: 3, limit: 3 } });
    // Another user is not affected.
    expect((await call(bob, 'POST', '/audio/process', { audioId: await upload(bob, bytes, 5000) })).status).toBe(202);
  });
});

describe('concurrency and storage bounds', () => {
  const bytes = randomBytes(10_000);
  const statuses = (replies: Array<{ status: number }>) => replies.map((r) => r.status).sort((x, y) => x - y);

  it('20 concurrent POST /audio/process for one upload start one pipeline: the rest get it back (same key) or a 409 naming it (no key), never 500', async () => {
    const user = await signUp('racer');
    const free = await upload(user, bytes, 5000);
    const noKey = await Promise.all(Array.from({ length: 20 }, () => call(user, 'POST', '/audio/process', { audioId: free })));
    expect(statuses(noKey)).toEqual([202, ...Array(19).fill(409)]);
    const winner = noKey.find((r) => r.status === 202)!.body.taskId as string;
    for (const r of noKey.filter((x) => x.status === 409)) expect(r.body.error.message).toContain(`already being processed by task "${winner}"`);

    const keyed = await upload(user, bytes, 5000);
    const same = await Promise.all(Array.from({ length: 20 }, () => call(user, 'POST', '/audio/process', { audioId: keyed, idempotencyKey: 'one-key' })));
    expect(statuses(same)).toEqual(Array(20).fill(202));
    expect(new Set(same.map((r) => r.body.taskId)).size).toBe(1);
  });

  it('the limit of running pipelines per user is exact under 12 concurrent requests, and a finished pipeline frees its slot', async () => {
    const user = await signUp('burst');
    const ids = await Promise.all(Array.from({ length: 12 }, () => upload(user, bytes, 5000)));
    const replies = await Promise.all(ids.map((audioId) => call(user, 'POST', '/audio/process', { audioId })));
    expect(statuses(replies)).toEqual([...Array(3).fill(202), ...Array(9).fill(429)]);
    for (const r of replies.filter((x) => x.status === 429)) {
      expect(r.headers.get('retry-after')).toBe('30');
      expect(r.body.error).toMatchObject({ code: 'resource-exhausted', details: { active: 3, limit: 3 } });
    }
    const running = replies.filter((r) => r.status === 202).map((r) => r.body.taskId as string);
    expect(await h.ff.count({ ownerUid: user.uid, type: AUDIO_PIPELINE, status: 'running' })).toBe(3);
    // Cancelling one (it finishes as cancelled) gives its slot back; a retry of it takes one again.
    expect((await call(user, 'POST', `/tasks/${running[0]}/cancel`)).body.status).toBe('cancelled');
    const next = ids.find((id) => !replies.some((r) => r.status === 202 && r.body.audioId === id))!;
    expect((await call(user, 'POST', '/audio/process', { audioId: next })).status).toBe(202);
    expect((await call(user, 'POST', `/tasks/${running[0]}/retry`)).status).toBe(429);
  });

  it('uploads in flight per user are limited exactly', async () => {
    const user = await signUp('hoarder');
    const declare = () => call(user, 'POST', '/audio', { contentType: 'audio/wav', chunkCount: 1, totalBytes: 10, sha256: sha(Buffer.alloc(10)) });
    const replies = await Promise.all(Array.from({ length: 22 }, declare));
    expect(statuses(replies), JSON.stringify(replies.filter((r) => r.status !== 201).map((r) => r.body))).toEqual([...Array(20).fill(201), 429, 429]);
    expect(replies.find((r) => r.status === 429)!.body.error).toMatchObject({ code: 'resource-exhausted', details: { active: 20, limit: 20 } });
    // Completing one (process finalises it) frees its slot.
    const done = replies.find((r) => r.status === 201)!.body.audioId as string;
    const chunk = Buffer.alloc(10);
    expect((await call(user, 'PUT', `/audio/${done}/chunks/0`, chunk, { 'content-type': 'application/octet-stream', 'x-chunk-sha256': sha(chunk) })).status).toBe(200);
    expect((await call(user, 'POST', '/audio/process', { audioId: done })).status).toBe(202);
    expect((await declare()).status).toBe(201);
    expect((await declare()).status).toBe(429);
  });

  it('a chunk never makes an upload hold more than it declared, however chunks are sized or re-sent', async () => {
    const put = (id: string, index: number, body: Buffer) =>
      call(alice, 'PUT', `/audio/${id}/chunks/${index}`, body, { 'content-type': 'application/octet-stream', 'x-chunk-sha256': sha(body) });
    const tiny = (await call(alice, 'POST', '/audio', { contentType: 'audio/wav', chunkCount: 1, totalBytes: 10, sha256: sha(Buffer.alloc(10)) })).body.audioId as string;
    const over = await put(tiny, 0, Buffer.alloc(11));
    expect(over.status).toBe(400);
    expect(over.body.error.details.issues[0].message).toMatch(/add up to 11 bytes, more than the declared totalBytes 10/);
    expect(await h.blobs.list(`uploads/${tiny}/`)).toEqual([]);

    const two = (await call(alice, 'POST', '/audio', { contentType: 'audio/wav', chunkCount: 2, totalBytes: 10, sha256: sha(Buffer.alloc(10)) })).body.audioId as string;
    expect((await put(two, 0, Buffer.alloc(9))).status).toBe(200);
    expect((await put(two, 1, Buffer.alloc(2))).status).toBe(400);
    expect((await put(two, 1, Buffer.alloc(1))).status).toBe(200);
    expect((await put(two, 0, Buffer.alloc(10))).status).toBe(400); // a re-sent chunk counts in place of the old one
    expect((await put(two, 0, Buffer.alloc(8))).status).toBe(200);
    const stored = await h.blobs.list(`uploads/${two}/`);
    expect(stored.reduce((n, b) => n + b.size, 0)).toBeLessThanOrEqual(10);
  });

  it('an abandoned upload expires: its chunks are deleted, its slot freed, and it can no longer be processed', async () => {
    const user = await signUp('abandons');
    const id = await upload(user, bytes, 5000, [0]);
    const inFlight = () => activeSlots(h.db.doc(`audio_owners/${user.uid}`));
    expect(await inFlight()).toBe(1);
    expect(await h.blobs.list(`uploads/${id}/`)).toHaveLength(1);
    expect(await expireUploads(h.db, h.blobs, { now: Date.now() + 60_000 })).toEqual([]); // not yet past its 24 h
    expect(await expireUploads(h.db, h.blobs, { now: Date.now() + 25 * 3_600_000 })).toContain(id);
    expect(await h.blobs.list(`uploads/${id}/`)).toEqual([]);
    expect(await inFlight()).toBe(0);
    const record = await getAudio(h.db, id);
    expect(record).toMatchObject({ status: 'expired', error: { name: 'UploadExpiredError' }, expireAt: expect.any(Date) });
    const chunk = bytes.subarray(5000);
    expect((await call(user, 'PUT', `/audio/${id}/chunks/1`, chunk, { 'content-type': 'application/octet-stream', 'x-chunk-sha256': sha(chunk) })).status).toBe(409);
    const refused = await call(user, 'POST', '/audio/process', { audioId: id });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toMatch(/never completed and its chunks were deleted/);
  });
});

describe('tasks', () => {
  it('shows users their own tasks only; an admin sees all', async () => {
    const mine = await call(alice, 'POST', '/audio/process', { audioId: await upload(alice, randomBytes(3000), 3000) });
    const id = mine.body.taskId as string;
    expect((await call(bob, 'GET', `/tasks/${id}`)).status).toBe(404);
    expect((await call(bob, 'POST', `/tasks/${id}/cancel`)).status).toBe(404);
    expect((await call(admin, 'GET', `/tasks/${id}`)).status).toBe(200);

    const list = await call(alice, 'GET', '/tasks?limit=100');
    expect(list.body.tasks.length).toBeGreaterThan(0);
    expect(list.body.tasks.every((t: { ownerUid: string }) => t.ownerUid === alice.uid)).toBe(true);
    expect((await call(alice, 'GET', `/tasks?ownerUid=${bob.uid}`)).status).toBe(403);
    const bobs = await call(admin, 'GET', `/tasks?ownerUid=${bob.uid}`);
    expect(bobs.body.tasks.length).toBeGreaterThan(0);
    expect(bobs.body.tasks.every((t: { ownerUid: string }) => t.ownerUid === bob.uid)).toBe(true);
    const count = await call(alice, 'GET', `/tasks/count?type=${AUDIO_PIPELINE}&status=running`);
    expect(count.body.count).toBeGreaterThan(0);
    expect(count.body.count).toBe(list.body.tasks.filter((t: { type: string; status: string }) => t.type === AUDIO_PIPELINE && t.status === 'running').length);
  });

  it('pages with a cursor and refuses a forged one', async () => {
    const first = await call(alice, 'GET', '/tasks?limit=1');
    expect(first.body.tasks).toHaveLength(1);
    const second = await call(alice, 'GET', `/tasks?limit=1&cursor=${first.body.nextCursor}`);
    expect(second.body.tasks).toHaveLength(1);
    expect(second.body.tasks[0].id).not.toBe(first.body.tasks[0].id);
    const forged = await call(alice, 'GET', '/tasks?cursor=abc');
    expect(forged.status).toBe(400);
    expect(forged.body.error.details.issues[0]).toMatchObject({ path: 'cursor' });
    expect((await call(alice, 'GET', '/tasks?limit=101')).body.error.details.issues[0].path).toBe('query.limit');
    expect((await call(alice, 'GET', '/tasks?colour=red')).body.error.details.issues[0].message).toMatch(/colour/);
  });

  it('cancels and retries through the API', async () => {
    const started = await call(alice, 'POST', '/audio/process', { audioId: await upload(alice, randomBytes(3000), 3000) });
    const cancelled = await call(alice, 'POST', `/tasks/${started.body.taskId}/cancel`);
    expect(cancelled).toMatchObject({ status: 200, body: { id: started.body.taskId, status: 'cancelled' } });
    const retried = await call(alice, 'POST', `/tasks/${started.body.taskId}/retry`);
    expect(retried).toMatchObject({ status: 200, body: { status: 'running' } });
    expect((await call(alice, 'POST', `/tasks/${started.body.taskId}/retry`)).status).toBe(409);
  });

  it('refuses ids Firestore reserves (".", "..", "__…__") at once with 400, on every id route', async () => {
    // Sent as written: fetch would resolve "." and ".." segments away before they left.
    const raw = (method: string, path: string) =>
      new Promise<{ status: number; body: any }>((resolve, reject) => {
        const { hostname, port } = new URL(h.api.url);
        const req = request({ hostname, port, path, method, headers: { authorization: `Bearer ${alice.token}` } }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c)).on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
        });
        req.on('error', reject).end();
      });
    for (const id of ['.', '..', '__proto__', '__x__']) {
      for (const [method, path] of [['GET', `/tasks/${id}`], ['POST', `/tasks/${id}/cancel`], ['POST', `/tasks/${id}/retry`], ['GET', `/audio/${id}/results`], ['GET', `/audio/${id}/speech`]] as const) {
        const started = Date.now();
        const r = await raw(method, path);
        expect(r.status, `${method} ${path}: ${JSON.stringify(r.body).slice(0, 300)}`).toBe(400);
        expect(r.body.error.message).toMatch(/invalid params/);
        expect(Date.now() - started).toBeLessThan(1_000);
      }
      expect((await call(alice, 'POST', '/audio/process', { audioId: id })).status).toBe(400);
    }
  });

  it('answers unknown routes 404 and wrong methods 405, as JSON', async () => {
    expect(await call(alice, 'GET', '/nope')).toMatchObject({ status: 404, body: { error: { code: 'not-found' } } });
    const wrong = await call(alice, 'DELETE', '/tasks/abc');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET');
  });
});

describe('OpenAPI', () => {
  it('documents exactly the routes the app serves', async () => {
    const doc = (await call(null, 'GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
    const app = createApi({ fireflow: h.ff, db: h.db, blobs: h.blobs, authenticate: async () => ({ uid: 'x', admin: false }) });
    const served = (app.router.stack as Array<{ route?: { path: string; methods: Record<string, boolean> } }>)
      .filter((l) => l.route && l.route.path !== '/openapi.json')
      .flatMap((l) => Object.keys(l.route!.methods).map((m) => `${m.toUpperCase()} ${l.route!.path.replace(/:(\w+)/g, '{$1}')}`))
      .sort();
    expect(documented).toEqual(served);
    expect(doc.paths['/audio/process']!.post).toMatchObject({ requestBody: { content: { 'application/json': { schema: { properties: { audioId: { type: 'string' } } } } } } });
  });
});
