import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobNotFoundError, checkKey, readWithNotFound, type BlobInfo, type BlobStore, type ByteRange } from './blob-store.js';

/**
 * Blobs as files under `root`. Writes go to a temporary name and are renamed into place, so a reader never sees a
 * half-written blob; `concat` streams each source in turn and never loads a file whole.
 */
export class FsBlobStore implements BlobStore {
  constructor(readonly root: string) {
    if (typeof root !== 'string' || root.length === 0) throw new TypeError(`root must be a directory path, got ${JSON.stringify(root)}`);
  }

  /** The file behind a key, for tools that want a path (sox, pocketsphinx). */
  path(key: string): string {
    return join(this.root, ...checkKey(key).split('/'));
  }

  localPath(key: string): string {
    return this.path(key);
  }

  async put(key: string, body: Buffer | Readable): Promise<BlobInfo> {
    const file = this.path(key);
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${randomBytes(4).toString('hex')}.partial`;
    try {
      await pipeline(Buffer.isBuffer(body) ? Readable.from([body]) : body, createWriteStream(tmp));
      await rename(tmp, file);
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
    return { key, size: (await stat(file)).size };
  }

  read(key: string, range?: ByteRange): Readable {
    return readWithNotFound(key, createReadStream(this.path(key), range ? { start: range.start, end: range.end } : {}), (e) => (e as NodeJS.ErrnoException).code === 'ENOENT');
  }

  async stat(key: string): Promise<BlobInfo | null> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? { key, size: s.size } : null;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    const out: BlobInfo[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw error;
      }
      for (const e of entries) {
        const full = join(dir, e.name);
        if (e.isDirectory()) await walk(full);
        else if (e.isFile() && !e.name.endsWith('.partial')) {
          const key = relative(this.root, full).split(sep).join('/');
          if (key.startsWith(prefix)) out.push({ key, size: (await stat(full)).size });
        }
      }
    };
    // Only walk the directory the prefix is certainly inside.
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    await walk(base ? join(this.root, ...base.split('/')) : this.root);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async concat(sources: readonly string[], dest: string): Promise<BlobInfo> {
    for (const s of sources) if (!(await this.stat(s))) throw new BlobNotFoundError(s);
    const self = this;
    async function* chain() {
      for (const s of sources) yield* createReadStream(self.path(s));
    }
    return this.put(dest, Readable.from(chain()));
  }
}
