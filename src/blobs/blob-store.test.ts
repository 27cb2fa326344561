// One contract for every BlobStore: the filesystem store always, Cloud Storage when STORAGE_EMULATOR_HOST is set.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterAll, describe, expect, it } from 'vitest';
import { BlobNotFoundError, checkKey, type BlobStore } from './blob-store.js';
import { FsBlobStore } from './fs-store.js';
import { GcsBlobStore } from './gcs-store.js';

async function sha(stream: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of stream) h.update(chunk as Buffer);
  return h.digest('hex');
}

function contract(name: string, make: () => Promise<BlobStore>) {
  describe(`BlobStore contract: ${name}`, () => {
    let store: BlobStore;
    it('puts, stats, reads back and replaces', async () => {
      store = await make();
      expect(await store.put('a/b/one.bin', Buffer.from('hello'))).toEqual({ key: 'a/b/one.bin', size: 5 });
      expect(await store.stat('a/b/one.bin')).toEqual({ key: 'a/b/one.bin', size: 5 });
      expect(await text(store.read('a/b/one.bin'))).toBe('hello');
      await store.put('a/b/one.bin', Readable.from([Buffer.from('bye')]));
      expect(await text(store.read('a/b/one.bin'))).toBe('bye');
    });

    it('reads a range of bytes, both ends included', async () => {
      await store.put('a/range.bin', Buffer.from('0123456789'));
      expect(await text(store.read('a/range.bin', { start: 2, end: 5 }))).toBe('2345');
      expect(await text(store.read('a/range.bin', { start: 9, end: 9 }))).toBe('9');
      expect(await text(store.read('a/range.bin', { start: 0, end: 9 }))).toBe('0123456789');
    });

    it('reports missing blobs', async () => {
      expect(await store.stat('nope/x')).toBeNull();
      await expect(text(store.read('nope/x'))).rejects.toBeInstanceOf(BlobNotFoundError);
      await expect(store.concat(['a/b/one.bin', 'nope/x'], 'out')).rejects.toThrow(/no blob at "nope\/x"/);
      await store.delete('nope/x');
    });

    it('lists by prefix in key order and deletes', async () => {
      for (const i of [2, 0, 1]) await store.put(`uploads/u1/${i}`, Buffer.from(String(i)));
      await store.put('uploads/u10/0', Buffer.from('x'));
      expect((await store.list('uploads/u1/')).map((b) => b.key)).toEqual(['uploads/u1/0', 'uploads/u1/1', 'uploads/u1/2']);
      await store.delete('uploads/u1/1');
      expect((await store.list('uploads/u1/')).map((b) => b.key)).toEqual(['uploads/u1/0', 'uploads/u1/2']);
    });

    it('concatenates 70 parts in order (more than one compose round on Cloud Storage)', async () => {
      const parts: Buffer[] = [];
      for (let i = 0; i < 70; i++) {
        const part = randomBytes(1000 + i);
        parts.push(part);
        await store.put(`chunks/c/${String(i).padStart(3, '0')}`, part);
      }
      const keys = (await store.list('chunks/c/')).map((b) => b.key);
      const info = await store.concat(keys, 'chunks/c-all');
      const whole = Buffer.concat(parts);
      expect(info.size).toBe(whole.length);
      expect(await sha(store.read('chunks/c-all'))).toBe(createHash('sha256').update(whole).digest('hex'));
      expect((await store.list('chunks/c-all')).map((b) => b.key)).toEqual(['chunks/c-all']); // no temporaries left
    });
  });
}

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

contract('filesystem', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fireflow-blobs-'));
  dirs.push(dir);
  return new FsBlobStore(dir);
});

if (process.env.STORAGE_EMULATOR_HOST) {
  contract('Cloud Storage', async () => {
    const { Storage } = await import('@google-cloud/storage');
    const storage = new Storage({ projectId: 'demo-fireflow', apiEndpoint: process.env.STORAGE_EMULATOR_HOST });
    const bucket = storage.bucket(`demo-fireflow-${randomBytes(3).toString('hex')}`);
    await bucket.create().catch(() => undefined);
    return new GcsBlobStore(bucket);
  });
} else {
  describe.skip('BlobStore contract: Cloud Storage (skipped: STORAGE_EMULATOR_HOST is not set)', () => {
    it('runs against a Cloud Storage emulator', () => undefined);
  });
}

describe('blob keys', () => {
  it.each(['../etc/passwd', '/abs', 'a//b', 'a/./b', 'a/', '', 'sp ace'])('rejects %j', (key) => {
    expect(() => checkKey(key)).toThrow(TypeError);
  });
  it('accepts upload chunk keys', () => expect(checkKey('uploads/abc_1/0007')).toBe('uploads/abc_1/0007'));
});
