import type { Bucket } from '@google-cloud/storage';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobNotFoundError, checkKey, readWithNotFound, type BlobInfo, type BlobStore, type ByteRange } from './blob-store.js';

/** Sources one Cloud Storage compose call accepts. */
export const COMPOSE_LIMIT = 32;

/**
 * Blobs as objects in a Cloud Storage bucket. `concat` is server-side `compose`: no bytes pass through this process;
 * more than 32 sources are composed in rounds through temporary objects that are deleted afterwards.
 */
export class GcsBlobStore implements BlobStore {
  constructor(
    readonly bucket: Bucket,
    /** Prepended to every key, e.g. `fireflow/`. @default '' */
    readonly prefix = '',
  ) {}

  private name(key: string): string {
    return this.prefix + checkKey(key);
  }

  async put(key: string, body: Buffer | Readable, options: { contentType?: string } = {}): Promise<BlobInfo> {
    const file = this.bucket.file(this.name(key));
    const metadata = options.contentType ? { contentType: options.contentType } : undefined;
    if (Buffer.isBuffer(body)) {
      await file.save(body, { resumable: false, metadata });
      return { key, size: body.length };
    }
    await pipeline(body, file.createWriteStream({ resumable: false, metadata }));
    return { key, size: Number((await file.getMetadata())[0].size ?? 0) };
  }

  gcsUri(key: string): string {
    return `gs://${this.bucket.name}/${this.name(key)}`;
  }

  read(key: string, range?: ByteRange): Readable {
    return readWithNotFound(key, this.bucket.file(this.name(key)).createReadStream(range ? { start: range.start, end: range.end } : {}), (e) => (e as { code?: number }).code === 404);
  }

  async stat(key: string): Promise<BlobInfo | null> {
    try {
      const [meta] = await this.bucket.file(this.name(key)).getMetadata();
      return { key, size: Number(meta.size ?? 0) };
    } catch (error) {
      if ((error as { code?: number }).code === 404) return null;
      throw error;
    }
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    const [files] = await this.bucket.getFiles({ prefix: this.prefix + prefix });
    return files
      .map((f) => ({ key: f.name.slice(this.prefix.length), size: Number(f.metadata.size ?? 0) }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await this.bucket.file(this.name(key)).delete({ ignoreNotFound: true });
  }

  async concat(sources: readonly string[], dest: string): Promise<BlobInfo> {
    for (const s of sources) if (!(await this.stat(s))) throw new BlobNotFoundError(s);
    let round = sources.map((s) => this.name(s));
    const temporary: string[] = [];
    try {
      for (let level = 0; round.length > COMPOSE_LIMIT; level++) {
        const next: string[] = [];
        for (let i = 0; i < round.length; i += COMPOSE_LIMIT) {
          const name = `${this.name(dest)}.compose-${level}-${i / COMPOSE_LIMIT}`;
          await this.bucket.combine(round.slice(i, i + COMPOSE_LIMIT), name);
          temporary.push(name);
          next.push(name);
        }
        round = next;
      }
      await this.bucket.combine(round, this.name(dest));
    } finally {
      await Promise.all(temporary.map((t) => this.bucket.file(t).delete({ ignoreNotFound: true })));
    }
    const info = await this.stat(dest);
    if (!info) throw new BlobNotFoundError(dest);
    return info;
  }
}
