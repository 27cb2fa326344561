// fireflow/text: what the text stages compute, as pure functions of a transcript (no Firestore): sentences, topic
// segments (U00, C99), the concept graph, chapters, questions (offline cloze, or an LLM), and a consistency check.
export { splitSentences, type Sentence, type SentenceBasis, type SentenceOptions } from './sentences.js';
export { segmentTranscript, type Chunk, type ChunkOptions, type Segmentation, type Segmenter, type TextContext, type TextQuality } from './chunk.js';
export { c99, type C99Options } from './c99.js';
export { u00, type U00Options } from './u00.js';
export { segmentationScore, type SegmentationScore } from './metrics.js';
export { buildConceptGraph, capGraph, type ConceptGraph, type ConceptNode, type ConceptEdge, type ConceptType, type Community, type GraphOptions, type GraphCap } from './graph.js';
export { buildChapters, type Chapter, type ChapterOptions } from './chapters.js';
export { clozeQuestions, offlineQuestions, type Question, type QuestionGenerator, type QuestionInput, type ClozeOptions } from './questions.js';
export { QUESTIONS_JSON_SCHEMA, type LlmQuestionOptions } from './llm.js';
export { openAiQuestions, type OpenAiQuestionOptions } from './openai-questions.js';
export { geminiQuestions, type GeminiQuestionOptions } from './gemini-questions.js';
export { createQuestionGenerator, questionConfigFromEnv, questionConfigSchema, QUESTION_PROVIDERS, type QuestionConfig } from './select-questions.js';
export { textProblems, type TextResults } from './check.js';
export { subtitleCues, toWebVtt, toSrt, layoutLines, type Cue, type CueOptions, type TimedWord } from './subtitles.js';
