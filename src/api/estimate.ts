import { AUDIO_PIPELINE, AUDIO_STAGES, type AudioStage } from '../audio/pipeline.js';
import type { AudioRecord } from '../audio/record.js';
import type { Fireflow } from '../fireflow.js';

/** Seconds of work per second of audio for each stage, and a fixed cost per stage run, seconds. */
export interface StageRates {
  perAudioSecond: Record<AudioStage, number>;
  fixedSeconds: Record<AudioStage, number>;
  /** How many finished pipelines the rates come from; 0 means the defaults. */
  samples: number;
}

/**
 * Measured on the reference machine (2 cores, pocketsphinx): the demo's 25 s LibriVox clip and the 60-minute text
 * benchmark. Transcription dominates at about 0.15 s per audio second.
 */
export const DEFAULT_STAGE_RATES: StageRates = {
  perAudioSecond: { reassemble: 0.002, transcribe: 0.15, chunk: 0.00015, graph: 0.0005, chapters: 0.00005, questions: 0.00005 },
  fixedSeconds: { reassemble: 0.1, transcribe: 0.5, chunk: 0.1, graph: 0.2, chapters: 0.1, questions: 0.1 },
  samples: 0,
};

/**
 * Bytes per second of audio assumed before reassembly has measured the duration: 16 kHz 16-bit mono for WAV (what
 * speech recorders write; a 44.1 kHz stereo file is over-estimated 5×), lossless for FLAC, 128 kbit/s otherwise.
 */
function assumedBytesPerSecond(contentType: string): number {
  if (/wav|wave|pcm/i.test(contentType)) return 32_000;
  if (/flac/i.test(contentType)) return 20_000;
  return 16_000;
}

/** Seconds until the selected stages finish: the measured duration when known, else one assumed from the size. */
export function estimateSeconds(audio: Pick<AudioRecord, 'durationSeconds' | 'totalBytes' | 'contentType'>, rates: StageRates, stages: readonly AudioStage[]): number {
  const duration = audio.durationSeconds ?? audio.totalBytes / assumedBytesPerSecond(audio.contentType);
  const total = stages.reduce((sum, s) => sum + rates.fixedSeconds[s] + rates.perAudioSecond[s] * duration, 0);
  return Math.max(1, Math.round(total));
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? undefined : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * Rates from the last `samples` completed audio pipelines (each stage's seconds over the duration its reassembly
 * measured, the median per stage); a stage with no history keeps its default.
 */
export async function measuredStageRates(ff: Fireflow, samples = 20): Promise<StageRates> {
  const page = await ff.list({ type: AUDIO_PIPELINE, status: 'completed' }, { limit: samples });
  const perAudioSecond = { ...DEFAULT_STAGE_RATES.perAudioSecond };
  let used = 0;
  const observed = Object.fromEntries(AUDIO_STAGES.map((s) => [s, [] as number[]])) as Record<AudioStage, number[]>;
  for (const task of page.tasks) {
    const duration = (task.stages?.reassemble?.output as { durationSeconds?: unknown } | null | undefined)?.durationSeconds;
    if (typeof duration !== 'number' || duration <= 0) continue;
    used++;
    for (const s of AUDIO_STAGES) {
      const seconds = task.stages?.[s]?.seconds;
      if (typeof seconds === 'number') observed[s].push(Math.max(0, seconds - DEFAULT_STAGE_RATES.fixedSeconds[s]) / duration);
    }
  }
  for (const s of AUDIO_STAGES) perAudioSecond[s] = median(observed[s]) ?? perAudioSecond[s];
  return { perAudioSecond, fixedSeconds: DEFAULT_STAGE_RATES.fixedSeconds, samples: used };
}
