// Synthetic speech for the evaluations: Debian's TTS engines (espeak-ng; flite and festival when installed) reading
// a text into a 16 kHz mono 16-bit WAV, the format the transcribers take.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Voice {
  /** `espeak-ng:en-us`, `flite:slt`, `festival:kal` */
  id: string;
  engine: 'espeak-ng' | 'flite' | 'festival';
  name: string;
}

const onPath = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** The voices that exist here, from `wanted` (`engine:name`); the rest come back in `missing` with what to install. */
export function availableVoices(wanted: readonly string[]): { voices: Voice[]; missing: { id: string; install: string }[] } {
  const voices: Voice[] = [];
  const missing: { id: string; install: string }[] = [];
  for (const id of wanted) {
    const [engine, name] = id.split(':') as [Voice['engine'], string];
    const tool = { 'espeak-ng': 'espeak-ng', flite: 'flite', festival: 'text2wave' }[engine];
    const pkg = { 'espeak-ng': 'espeak-ng', flite: 'flite', festival: 'festival festvox-kallpc16k' }[engine];
    if (tool && onPath(tool)) voices.push({ id, engine, name });
    else missing.push({ id, install: `apt-get install ${pkg}` });
  }
  return { voices, missing };
}

function must(cmd: string, args: string[], input?: string): void {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

/** `text` read by `voice` into `out` (16 kHz mono 16-bit WAV). `dir` holds the intermediate files. */
export function speak(voice: Voice, text: string, out: string, dir: string): void {
  const raw = `${out}.raw.wav`;
  const textFile = join(dir, 'speak.txt');
  writeFileSync(textFile, text);
  if (voice.engine === 'espeak-ng') must('espeak-ng', ['-v', voice.name, '-s', '150', '-w', raw, '-f', textFile]);
  else if (voice.engine === 'flite') must('flite', ['-voice', voice.name, '-f', textFile, '-o', raw]);
  else must('text2wave', ['-o', raw, '-eval', `(voice_${voice.name}_diphone)`, textFile]);
  must('sox', ['-V1', raw, '-r', '16000', '-c', '1', '-b', '16', '-e', 'signed-integer', out]);
  must('rm', ['-f', raw]);
}

/** WAV files joined in order into `out`, with `gapSeconds` of silence between them. */
export function join16k(files: readonly string[], out: string, gapSeconds = 0.5): void {
  if (files.length === 1) return must('cp', [files[0]!, out]);
  const silence = `${out}.silence.wav`;
  must('sox', ['-n', '-r', '16000', '-c', '1', '-b', '16', '-e', 'signed-integer', silence, 'trim', '0', String(gapSeconds)]);
  const inputs = files.flatMap((f, i) => (i < files.length - 1 ? [f, silence] : [f]));
  must('sox', [...inputs, out]);
  must('rm', ['-f', silence]);
}

/** Seconds of a WAV file. */
export function wavSeconds(file: string): number {
  const r = spawnSync('soxi', ['-D', file], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}
