import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Debian's pocketsphinx-testdata: five LibriVox clips (public domain, 25 s in all) with reference transcripts. */
export const LIBRIVOX = '/usr/share/pocketsphinx/test/data/librivox';

/** The clips in the package's order, each with its reference transcript (lower case, as the package writes it). */
export function librivoxClips(): { id: string; file: string; reference: string }[] {
  return readFileSync(join(LIBRIVOX, 'transcription'), 'utf8')
    .split('\n')
    .map((l) => /^<s> (.*) <\/s> \((.*)\)$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ id: m[2]!, file: join(LIBRIVOX, `${m[2]}.wav`), reference: m[1]! }));
}
