export interface Word {
  word: string;
  /** Seconds from the start of the recording. */
  start: number;
  end: number;
  /** 0–1, as the engine reports it. */
  confidence: number;
}

export interface Transcript {
  text: string;
  words: Word[];
  /** BCP-47, e.g. `en-US`, or `en` as Whisper detects it; `und` when unknown. */
  language: string;
  /** 0–1: how sure the engine was of `language`, when it detected it rather than being told. */
  languageProbability?: number;
  engine: string;
}

export interface TranscribeContext {
  signal?: AbortSignal;
  /** Share done, 0–100. */
  progress?: (percent: number) => void;
  /**
   * Cores this call may use. A piece of a map stage passes 1: its siblings run beside it, one per slot. A
   * transcriber that runs processes or threads sizes them to it. @default all of this machine's
   */
  cores?: number;
}

/** The recording to transcribe: 16 kHz mono 16-bit WAV (what the reassembly stage produces). */
export interface AudioInput {
  /** A local file with the audio; fetched on the first call when it lives in a remote blob store. */
  localPath(): Promise<string>;
  /** `gs://bucket/object` of the same file when it is in Cloud Storage (Google Speech-to-Text reads it there). */
  gcsUri?: string;
}

/** An `AudioInput` for a file on this machine. */
export function localAudio(path: string): AudioInput {
  return { localPath: async () => path };
}

/** Speech to text with word timings. Implementations: offline Whisper (default where its environment is installed) and pocketsphinx, Google Speech-to-Text, OpenAI. */
export interface Transcriber {
  readonly engine: string;
  transcribe(audio: AudioInput, ctx?: TranscribeContext): Promise<Transcript>;
}
