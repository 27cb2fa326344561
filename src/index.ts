export { createFireflow, Fireflow, type FireflowOptions, type SubmitOptions } from './fireflow.js';
export { defineTask, type TaskContext, type TaskDefinition, type TaskDefinitionOptions, type StagedWrites } from './core/define.js';
export {
  NonRetriableError,
  RetryAfterError,
  TaskCancelledError,
  TaskTimeoutError,
  ShutdownError,
  LeaseLostError,
  TaskValidationError,
  UnknownTaskTypeError,
  NotFoundError,
  StateError,
  TaskNotFoundError,
  TaskStateError,
  MalformedTaskError,
  ActiveLimitError,
  UnstorableError,
  formatIssues,
  type AbortReason,
  type FieldIssue,
} from './core/errors.js';
export { createTestContext, type TestContext } from './core/context.js';
export { writeInBatches, type BatchStats, type WriteInBatchesOptions } from './core/batches.js';
export { RETRY_POLICIES, resolveRetryPolicy, backoffDelayMs, parseRetryOverrides, type RetryPolicyName, type RetrySpec, type RetryOverrides } from './core/retry.js';
export { createLogger, recordingLogger, type Logger, type LogFields, type RecordedLog } from './core/logger.js';
export type { MetricsSnapshot, Outcome } from './core/metrics.js';
export type { TaskFilter } from './core/queries.js';
export { TaskStore, type ListOptions, type TaskPage, type WriteKind } from './core/store.js';
export {
  TASK_STATUSES,
  QUEUE_NAMES,
  IS_TERMINAL,
  TASKS_COLLECTION,
  STAGE_STATUSES,
  type Task,
  type TaskStatus,
  type QueueName,
  type TaskError,
  type StageState,
  type StageStatus,
} from './core/task.js';
export {
  definePipeline,
  type PipelineDefinition,
  type PipelineDefinitionOptions,
  type StageDefinition,
  type PipelineOutcome,
  type PipelineHookContext,
} from './pipeline/define.js';
export { overallProgress, stageTaskId } from './pipeline/runner.js';
export { inProcess, InProcessExecutor, type InProcessOptions } from './executors/in-process.js';
export { cloudTasks, CloudTasksExecutor, dispatchId, dispatchPayload, type CloudTasksOptions, type DispatchOutcome, type TaskQueueLike } from './executors/cloud-tasks.js';
export { hybrid, HybridExecutor, type HybridOptions } from './executors/hybrid.js';
export type { Executor, ExecutorFactory, ExecutorRuntime, PipelineHooks, Reservation } from './executors/executor.js';

// Audio: uploads, the audio pipeline and its providers.
export { audioPipeline, blobAudio, AUDIO_PIPELINE, AUDIO_STAGES, DEFAULT_AUDIO_WEIGHTS, type AudioPipelineOptions, type AudioStage } from './audio/pipeline.js';
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
} from './audio/record.js';
export { reassemble, chunkKey, type ReassembledAudio } from './audio/reassemble.js';
export { BlobNotFoundError, type BlobStore, type BlobInfo } from './blobs/blob-store.js';
export { FsBlobStore } from './blobs/fs-store.js';
export { GcsBlobStore } from './blobs/gcs-store.js';
export { localAudio, type AudioInput, type Transcriber, type Transcript, type Word, type TranscribeContext } from './transcribe/transcriber.js';
export { PocketsphinxTranscriber, DEFAULT_DECODER_ARGS, type PocketsphinxOptions } from './transcribe/pocketsphinx.js';
export { GoogleSpeechTranscriber, type GoogleSpeechOptions } from './transcribe/google.js';
export { OpenAiTranscriber, type OpenAiTranscriberOptions } from './transcribe/openai.js';
export { CircuitBreaker, CircuitOpenError, type CircuitBreakerOptions, type CircuitState } from './providers/circuit-breaker.js';
export { createTranscriber, transcriberConfigFromEnv, transcriberConfigSchema, type TranscriberConfig } from './transcribe/select.js';
export { saveTranscript, loadTranscript } from './transcribe/store.js';

// Text stages: pure functions of a transcript, and their storage.
export { splitSentences, type Sentence, type SentenceBasis, type SentenceOptions } from './text/sentences.js';
export { segmentTranscript, type Chunk, type ChunkOptions, type Segmentation, type Segmenter, type TextContext, type TextQuality } from './text/chunk.js';
export { c99, type C99Options } from './text/c99.js';
export { u00, type U00Options } from './text/u00.js';
export { segmentationScore, type SegmentationScore } from './text/metrics.js';
export { buildConceptGraph, capGraph, type ConceptGraph, type ConceptNode, type ConceptEdge, type ConceptType, type Community, type GraphOptions, type GraphCap } from './text/graph.js';
export { buildChapters, type Chapter, type ChapterOptions } from './text/chapters.js';
export { clozeQuestions, offlineQuestions, type Question, type QuestionGenerator, type QuestionInput, type ClozeOptions } from './text/questions.js';
export {
  openAiQuestions,
  geminiQuestions,
  createQuestionGenerator,
  questionConfigFromEnv,
  questionConfigSchema,
  QUESTION_PROVIDERS,
  type LlmQuestionOptions,
  type OpenAiQuestionOptions,
  type GeminiQuestionOptions,
  type QuestionConfig,
} from './text/llm-questions.js';
export { textProblems, type TextResults } from './text/check.js';
export { textStages, TEXT_STAGES, type TextStage, type TextStageOptions } from './text/stages.js';
export { saveChunks, loadChunks, saveGraph, loadGraph, saveChapters, loadChapters, saveQuestions, loadQuestions, graphBlobKey, type ChunksSummary, type GraphSummary } from './text/store.js';

// HTTP API: Express 5 app, Firebase Auth, OpenAPI, standalone server.
export { createApi, type ApiOptions } from './api/app.js';
export { firebaseAuthenticator, bearerToken, type Authenticate, type Caller } from './api/auth.js';
export { ApiError, toApiError, API_ERROR_STATUS, type ApiErrorCode } from './api/errors.js';
export { estimateSeconds, measuredStageRates, DEFAULT_STAGE_RATES, type StageRates } from './api/estimate.js';
export { openApiDocument } from './api/openapi.js';
export { serveApi, checkListenHost, UnsafeListenError, type ServeOptions, type RunningApi } from './api/server.js';
