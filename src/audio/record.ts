import { FieldValue, Timestamp, type DocumentReference, type Firestore } from 'firebase-admin/firestore';
import { z } from 'zod';
import type { BlobStore } from '../blobs/blob-store.js';
import { ID_PATTERN, ID_RULE } from '../core/ids.js';
import { NotFoundError, StateError, TaskValidationError, formatIssues } from '../core/errors.js';
import { nullableTimestamp, taskErrorSchema, timestamp, zodIssues, type TaskError } from '../core/task.js';
import { AUDIO_FORMATS, type AudioFormat } from './probe.js';
import { inspectChunks } from './reassemble.js';

export const AUDIO_COLLECTION = 'audio';

/**
 * `uploading`: chunks are arriving; `uploaded`: all of them are there; `processing`: a pipeline runs (`taskId`);
 * `ready`: it completed; `failed`: it failed or was cancelled (`error` says which). Any state but `processing` may be
 * processed again.
 */
export const AUDIO_STATUSES = ['uploading', 'uploaded', 'processing', 'ready', 'failed'] as const;
export type AudioStatus = (typeof AUDIO_STATUSES)[number];

/** Most chunks one upload may declare. */
export const MAX_CHUNKS = 10_000;
/** Largest upload, bytes (8 GiB). */
export const MAX_UPLOAD_BYTES = 8 * 1024 ** 3;

export class AudioNotFoundError extends NotFoundError {
  override name = 'AudioNotFoundError';
  constructor(readonly audioId: string) {
    super('audio', audioId);
  }
}

/** The audio is not in a state that allows the action (e.g. processed while already processing). */
export class AudioStateError extends StateError {
  override name = 'AudioStateError';
  constructor(
    readonly audioId: string,
    override readonly status: AudioStatus,
    action: string,
    reason?: string,
  ) {
    super('audio', audioId, status, action, reason);
  }
}

/** What a client declares when it starts an upload. Untrusted: parse it with this schema and use the parsed value. */
export const newUploadSchema = z
  .object({
    contentType: z.string().regex(/^[\w.+-]+\/[\w.+-]+$/, 'must be a MIME type such as audio/wav').max(100),
    chunkCount: z.number().int().min(1).max(MAX_CHUNKS),
    totalBytes: z.number().int().min(1, 'the upload is empty (0 bytes)').max(MAX_UPLOAD_BYTES),
    sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits').transform((s) => s.toLowerCase()),
  })
  .strict()
  .refine((u) => u.chunkCount <= u.totalBytes, { message: 'more chunks than bytes', path: ['chunkCount'] });
export type NewUpload = z.input<typeof newUploadSchema>;

const audioRecordSchema = z.object({
  ownerUid: z.string().nullable().default(null),
  contentType: z.string(),
  chunkCount: z.number().int().min(1),
  totalBytes: z.number().int().min(0),
  sha256: z.string(),
  status: z.enum(AUDIO_STATUSES),
  error: taskErrorSchema.nullable().default(null),
  /** The pipeline that processes (or last processed) it. */
  taskId: z.string().nullable().default(null),
  format: z.enum(AUDIO_FORMATS).nullable().default(null),
  durationSeconds: z.number().nullable().default(null),
  originalKey: z.string().nullable().default(null),
  speechKey: z.string().nullable().default(null),
  transcript: z
    .object({ wordCount: z.number().int(), pageCount: z.number().int(), language: z.string(), engine: z.string() })
    .nullable()
    .default(null),
  createdAt: timestamp,
  updatedAt: timestamp,
  uploadedAt: nullableTimestamp,
  readyAt: nullableTimestamp,
});

export interface AudioRecord extends z.output<typeof audioRecordSchema> {
  id: string;
  format: AudioFormat | null;
  error: TaskError | null;
}

/** Params of every task that works on one recording (the audio pipeline and its stages). */
export const audioParams = z.object({ audioId: z.string().regex(ID_PATTERN, ID_RULE) });

export const audioRef = (db: Firestore, audioId: string): DocumentReference => db.collection(AUDIO_COLLECTION).doc(audioId);

/** The record and the commit time it was read at (a precondition for writes that depend on what was read). */
export async function readAudio(db: Firestore, audioId: string): Promise<{ record: AudioRecord; updateTime: Timestamp } | null> {
  const snap = await audioRef(db, audioId).get();
  if (!snap.exists) return null;
  const parsed = audioRecordSchema.safeParse(snap.data());
  if (!parsed.success) throw new Error(`audio record ${JSON.stringify(audioId)} is malformed: ${formatIssues(zodIssues(parsed.error))}`);
  return { record: { id: audioId, ...parsed.data }, updateTime: snap.updateTime! };
}

export async function getAudio(db: Firestore, audioId: string): Promise<AudioRecord | null> {
  return (await readAudio(db, audioId))?.record ?? null;
}

/** Starts an upload: validates what the client declared and writes the record as `uploading`. */
export async function createUpload(db: Firestore, input: NewUpload, options: { ownerUid?: string; id?: string } = {}): Promise<AudioRecord> {
  const parsed = newUploadSchema.safeParse(input);
  if (!parsed.success) throw new TaskValidationError('invalid upload', zodIssues(parsed.error));
  const ref = options.id ? audioRef(db, options.id) : db.collection(AUDIO_COLLECTION).doc();
  await ref.create({
    ...parsed.data,
    ownerUid: options.ownerUid ?? null,
    status: 'uploading',
    error: null,
    taskId: null,
    createdAt: FieldValue.serverTimestamp(),
    updatedAt: FieldValue.serverTimestamp(),
  });
  return (await getAudio(db, ref.id))!;
}

/**
 * Marks an upload complete once every declared chunk is in the blob store and their sizes add up. Throws
 * `AudioStateError` naming the missing chunks otherwise. A no-op for an upload already complete.
 */
export async function completeUpload(db: Firestore, blobs: BlobStore, audioId: string): Promise<AudioRecord> {
  const current = await readAudio(db, audioId);
  if (!current) throw new AudioNotFoundError(audioId);
  const { record, updateTime } = current;
  if (record.status !== 'uploading') return record;
  const { missing, bytes } = await inspectChunks(blobs, audioId, record.chunkCount);
  if (missing.length) throw new AudioStateError(audioId, record.status, 'complete the upload of', `chunk${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${record.chunkCount} missing`);
  if (bytes !== record.totalBytes) throw new AudioStateError(audioId, record.status, 'complete the upload of', `chunks add up to ${bytes} bytes, not the declared ${record.totalBytes}`);
  await audioRef(db, audioId).update({ status: 'uploaded', uploadedAt: FieldValue.serverTimestamp(), updatedAt: FieldValue.serverTimestamp() }, { lastUpdateTime: updateTime });
  return (await getAudio(db, audioId))!;
}
