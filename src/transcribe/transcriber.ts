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
  /** BCP-47, e.g. `en-US`. */
  language: string;
  engine: string;
}

export interface TranscribeContext {
  signal?: AbortSignal;
  /** Share done, 0–100. */
  progress?: (percent: number) => void;
}

/** Speech to text with word timings. Implementations: offline pocketsphinx (default), Google Speech-to-Text, OpenAI. */
export interface Transcriber {
  readonly engine: string;
  /** `audio` is a 16 kHz mono 16-bit WAV file (the reassembly stage produces it). */
  transcribe(audio: string, ctx?: TranscribeContext): Promise<Transcript>;
}
