import { describe, expect, it } from 'vitest';
import { WORDS_PER_PAGE, loadTranscript, saveTranscript } from '../src/audio/transcript-store.js';
import type { Transcript } from '../src/transcribe/transcriber.js';
import { emulatorFirestore } from './helpers.js';

const db = emulatorFirestore('transcripts');

function synthetic(words: number): Transcript {
  return {
    text: '',
    words: Array.from({ length: words }, (_, i) => ({ word: `w${i}`, start: i * 0.4, end: i * 0.4 + 0.3, confidence: 0.9 })),
    language: 'en-US',
    engine: 'test',
  };
}

describe('transcript storage', () => {
  it('splits word timings across pages under 1 MiB each and reads them back in order', async () => {
    const t = synthetic(WORDS_PER_PAGE * 2 + 17); // a 40-minute talk's worth of words
    const meta = await saveTranscript(db, 'talk-1', t);
    expect(meta).toMatchObject({ wordCount: t.words.length, pageCount: 3 });
    const pages = await db.collection('audio/talk-1/transcript').where('index', '>=', 0).get();
    for (const p of pages.docs) expect(Buffer.byteLength(JSON.stringify(p.data()))).toBeLessThan(300_000);
    const back = await loadTranscript(db, 'talk-1');
    expect(back!.words).toEqual(t.words);
    expect(back!.text.split(' ').slice(0, 3)).toEqual(['w0', 'w1', 'w2']);
  });

  it('storing again overwrites instead of duplicating, and drops pages a shorter transcript no longer has', async () => {
    await saveTranscript(db, 'talk-2', synthetic(WORDS_PER_PAGE * 3));
    await saveTranscript(db, 'talk-2', synthetic(10));
    const docs = await db.collection('audio/talk-2/transcript').get();
    expect(docs.docs.map((d) => d.id).sort()).toEqual(['meta', 'page-00000']);
    expect((await loadTranscript(db, 'talk-2'))!.words).toHaveLength(10);
  });

  it('an empty transcript is stored as such; a missing one is null', async () => {
    await saveTranscript(db, 'silence', synthetic(0));
    expect(await loadTranscript(db, 'silence')).toMatchObject({ words: [], text: '' });
    expect(await loadTranscript(db, 'never-transcribed')).toBeNull();
  });
});
