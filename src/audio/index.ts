// fireflow/audio: recordings on Firebase — chunked uploads, the audio pipeline (reassemble → transcribe → text
// stages), the transcribers behind one seam, blob stores, and where transcripts and text results are stored.
export { audioPipeline, blobAudio, AUDIO_PIPELINE, AUDIO_STAGES, DEFAULT_AUDIO_WEIGHTS, type AudioPipelineOptions, type AudioStage } from './pipeline.js';
export {
  createUpload,
  completeUpload,
  expireUploads,
  reserveChunk,
  getAudio,
  newUploadSchema,
  AudioNotFoundError,
  AudioStateError,
  AUDIO_STATUSES,
  AUDIO_COLLECTION,
  type AudioRecord,
  type AudioStatus,
  type NewUpload,
} from './record.js';
export { reassemble, chunkKey, type ReassembledAudio } from './reassemble.js';
export { BlobNotFoundError, type BlobStore, type BlobInfo, type ByteRange } from '../blobs/blob-store.js';
export { FsBlobStore } from '../blobs/fs-store.js';
export { GcsBlobStore } from '../blobs/gcs-store.js';
export { localAudio, type AudioInput, type Transcriber, type Transcript, type Word, type TranscribeContext } from '../transcribe/transcriber.js';
export { PocketsphinxTranscriber, DEFAULT_DECODER_ARGS, type PocketsphinxOptions } from '../transcribe/pocketsphinx.js';
export { GoogleSpeechTranscriber, type GoogleSpeechOptions } from '../transcribe/google.js';
export { OpenAiTranscriber, type OpenAiTranscriberOptions } from '../transcribe/openai.js';
export { createTranscriber, transcriberConfigFromEnv, transcriberConfigSchema, type TranscriberConfig } from '../transcribe/select.js';
export { saveTranscript, loadTranscript } from './transcript-store.js';
export { WhisperTranscriber, findWhisper, DEFAULT_WHISPER_MODEL, type WhisperOptions } from '../transcribe/whisper.js';
export { textStages, TEXT_STAGES, type TextStage, type TextStageOptions } from './text-stages.js';
export { saveChunks, loadChunks, saveGraph, loadGraph, saveChapters, loadChapters, saveQuestions, loadQuestions, graphBlobKey, type ChunksSummary, type GraphSummary } from './text-store.js';
