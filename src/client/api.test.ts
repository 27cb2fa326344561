// fireflowApi against a 127.0.0.1 server that records what it is sent and answers like the API: chunking and
// checksums of an upload, the token on every call, errors as ApiCallError, an unreachable server as status 0.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiCallError, fireflowApi } from './api.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

let server: Server;
let base: string;
const seen: Seen[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const json = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      if (req.method === 'POST' && req.url === '/audio') return json(201, { audioId: 'a1', status: 'uploading', chunkCount: JSON.parse(body.toString()).chunkCount });
      if (req.method === 'PUT' && req.url?.startsWith('/audio/a1/chunks/')) return json(200, { audioId: 'a1', index: Number(req.url.split('/').pop()), bytes: body.length });
      if (req.url === '/tasks/missing') return json(404, { error: { code: 'not-found', message: 'no task "missing"', details: null } });
      if (req.url === '/tasks?type=audio.process&limit=5') return json(200, { tasks: [] });
      if (req.url === '/broken') return res.writeHead(502).end('<html>bad gateway</html>');
      return json(500, { error: { code: 'internal', message: 'internal error', details: null } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('fireflowApi', () => {
  it('uploads in chunks, each with its SHA-256, declaring the whole file first, and reports each chunk', async () => {
    seen.length = 0;
    let tokens = 0;
    const api = fireflowApi({ baseUrl: `${base}/`, idToken: async () => `token-${++tokens}` });
    const bytes = new Uint8Array(Buffer.from('0123456789'.repeat(25))); // 250 bytes
    const progress: number[] = [];
    expect(await api.upload(bytes, { chunkBytes: 100, contentType: 'audio/wav', onProgress: (p) => progress.push(p.chunksSent) })).toBe('a1');
    expect(progress).toEqual([0, 1, 2, 3]);
    const [declare, ...chunks] = seen;
    expect(JSON.parse(declare!.body.toString())).toEqual({ contentType: 'audio/wav', chunkCount: 3, totalBytes: 250, sha256: sha(bytes) });
    expect(chunks.map((c) => [c.url, c.body.length, c.headers['x-chunk-sha256'] === sha(c.body)])).toEqual([
      ['/audio/a1/chunks/0', 100, true],
      ['/audio/a1/chunks/1', 100, true],
      ['/audio/a1/chunks/2', 50, true],
    ]);
    // A fresh token for every call (the SDK refreshes it when it is due).
    expect(seen.map((s) => s.headers.authorization)).toEqual(['Bearer token-1', 'Bearer token-2', 'Bearer token-3', 'Bearer token-4']);
  });

  it('builds query strings, and throws the API error code and message as ApiCallError', async () => {
    const api = fireflowApi({ baseUrl: base, idToken: async () => 't' });
    expect(await api.tasks({ type: 'audio.process', limit: 5 })).toEqual({ tasks: [] });
    await expect(api.task('missing')).rejects.toMatchObject({ name: 'ApiCallError', status: 404, code: 'not-found', message: 'no task "missing"' });
    await expect(api.call('GET', '/broken')).rejects.toMatchObject({ status: 502, code: 'unknown', message: 'GET /broken answered 502' });
  });

  it('says plainly when the server cannot be reached (status 0), and refuses bad options and empty files', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const api = fireflowApi({ baseUrl: `http://127.0.0.1:${port}`, idToken: async () => 't' });
    const error = await api.task('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiCallError);
    expect(error).toMatchObject({ status: 0, code: 'unavailable', message: expect.stringContaining('cannot be reached (connect ECONNREFUSED') });
    expect(() => fireflowApi({ baseUrl: 'localhost:8787', idToken: async () => 't' })).toThrow(/baseUrl must be an http\(s\) URL, got "localhost:8787"/);
    await expect(api.upload(new Uint8Array(0))).rejects.toMatchObject({ status: 400, message: 'the file is empty (0 bytes)' });
    await expect(api.upload(new Uint8Array(3), { chunkBytes: 0 })).rejects.toThrow(/chunkBytes must be a whole number >= 1, got 0/);
  });
});
