import { FieldValue, Timestamp, type DocumentReference, type Firestore } from 'firebase-admin/firestore';
import { afterConflict, claimSlot, releaseSlot, serialized } from '../core/slots.js';
import { applyEquals, applyOrder, type QuerySpec } from '../core/queries.js';
import { applyStaged } from '../core/store.js';
import { z } from 'zod';
import type { BlobStore } from '../blobs/blob-store.js';
import { ID_PATTERN, ID_RULE } from '../core/ids.js';
import { NotFoundError, StateError, TaskValidationError, formatIssues, zodIssues, sharedIdentity } from '../core/errors.js';
import { nullableTimestamp, taskErrorSchema, timestamp, type TaskError } from '../core/task.js';
import { AUDIO_FORMATS, type AudioFormat } from '../media/probe.js';
import { chunkPrefix, inspectChunks } from './reassemble.js';

export const AUDIO_COLLECTION = 'audio';

/**
 * `uploading`: chunks are arriving; `uploaded`: all of them are there; `processing`: a pipeline runs (`taskId`);
 * `ready`: it completed; `failed`: it failed or was cancelled (`error` says which); `expired`: it was never completed
 * and its chunks were deleted (`expireUploads`). Any state but `processing` and `expired` may be processed again.
 */
export const AUDIO_STATUSES = ['uploading', 'uploaded', 'processing', 'ready', 'failed', 'expired'] as const;
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
    .object({ wordCount: z.number().int(), pageCount: z.number().int(), language: z.string(), languageProbability: z.number().optional(), engine: z.string() })
    .nullable()
    .default(null),
  createdAt: timestamp,
  updatedAt: timestamp,
  uploadedAt: nullableTimestamp,
  readyAt: nullableTimestamp,
  /** While uploading: when `expireUploads` gives up on it and deletes its chunks. */
  abandonAt: nullableTimestamp,
  /** Set once an upload expired: when a Firestore TTL policy may delete the record. */
  expireAt: nullableTimestamp,
  /** While uploading: the owner's slot it holds (`claimSlot`). */
  uploadSlot: z.number().int().min(0).nullable().default(null),
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

export interface UploadOptions {
  ownerUid?: string;
  id?: string;
  /** Uploads one owner may have in flight (declared, not yet complete or expired); more throw `ActiveLimitError`. @default no limit (the API's default is 5) */
  maxInFlight?: number;
  /** How long an upload may stay incomplete before `expireUploads` deletes its chunks, ms. @default 24 h */
  ttlMs?: number;
}

/** The API's limit of uploads in flight per user. @default 5 */
export const DEFAULT_UPLOADS_IN_FLIGHT = 5;
/** @default 24 h */
export const DEFAULT_UPLOAD_TTL_MS = 24 * 3_600_000;
/** How long an expired upload's record is kept, failed, before a TTL policy on `expireAt` may delete it. */
const EXPIRED_RECORD_KEPT_MS = 7 * 24 * 3_600_000;
const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;
const FAILED_PRECONDITION = 9;

/**
 * What the chunks of an upload in flight add up to, by index: `audio/{id}/upload/ledger`. A chunk is counted here
 * before its bytes are stored, under a precondition, so what the blob store holds for an upload never exceeds what it
 * declared, however the chunks are sized, re-sent or raced. Deleted once the upload is complete or expired.
 */
const ledgerRef = (db: Firestore, audioId: string): DocumentReference => audioRef(db, audioId).collection('upload').doc('ledger');

/** Where one owner's uploads in flight hold their slots (`audio_owners/{uid}/slots`, see `claimSlot`). */
const uploadSlots = (db: Firestore, ownerUid: string | null): DocumentReference => db.collection(`${AUDIO_COLLECTION}_owners`).doc(ownerUid ?? '-');

function isConflict(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === FAILED_PRECONDITION || code === NOT_FOUND;
}

/**
 * Starts an upload: validates what the client declared and writes the record as `uploading`, taking one of the
 * owner's `maxInFlight` slots in the same commit (`ActiveLimitError` when none is free).
 */
export async function createUpload(db: Firestore, input: NewUpload, options: UploadOptions = {}): Promise<AudioRecord> {
  const parsed = newUploadSchema.safeParse(input);
  if (!parsed.success) throw new TaskValidationError('invalid upload', zodIssues(parsed.error));
  const ownerUid = options.ownerUid ?? null;
  const ref = options.id ? audioRef(db, options.id) : db.collection(AUDIO_COLLECTION).doc();
  const ttlMs = options.ttlMs ?? DEFAULT_UPLOAD_TTL_MS;
  for (let round = 0; ; round++) {
    const slot = await claimSlot(uploadSlots(db, ownerUid), options.maxInFlight ?? Infinity, 'uploads in flight', ref.id);
    const batch = db.batch();
    batch.create(ref, {
      ...parsed.data,
      ownerUid,
      status: 'uploading',
      error: null,
      taskId: null,
      abandonAt: Timestamp.fromMillis(Date.now() + ttlMs),
      uploadSlot: slot.index,
      createdAt: FieldValue.serverTimestamp(),
      updatedAt: FieldValue.serverTimestamp(),
    });
    batch.create(ledgerRef(db, ref.id), { sizes: {}, bytes: 0 });
    applyStaged(batch, [slot.op]);
    try {
      await batch.commit();
      break;
    } catch (error) {
      // The slot was taken by an upload that raced this one (unless the record itself exists: a reused id).
      if ((error as { code?: unknown }).code !== ALREADY_EXISTS || (await ref.get()).exists) throw error;
      await afterConflict(round, 'upload creation');
    }
  }
  return (await getAudio(db, ref.id))!;
}

/**
 * Counts chunk `index` of `bytes` against what the upload declared, before the chunk is stored. Throws
 * `TaskValidationError` when the upload's chunks would then add up to more than its `totalBytes`, and
 * `AudioStateError` when the upload is no longer in flight (complete or expired).
 */
export async function reserveChunk(db: Firestore, record: AudioRecord, index: number, bytes: number): Promise<void> {
  const ref = ledgerRef(db, record.id);
  // Chunks of one upload sent in parallel are counted one at a time in this process.
  return serialized(ref.path, () => countChunk(ref, record, index, bytes));
}

async function countChunk(ref: DocumentReference, record: AudioRecord, index: number, bytes: number): Promise<void> {
  for (let round = 0; ; round++) {
    const snap = await ref.get();
    if (!snap.exists) throw new AudioStateError(record.id, record.status, 'upload a chunk to', 'the upload is no longer in flight (complete or expired); its chunks cannot change');
    const sizes = (snap.get('sizes') ?? {}) as Record<string, number>;
    const total = (snap.get('bytes') as number) - (sizes[index] ?? 0) + bytes;
    if (total > record.totalBytes) {
      throw new TaskValidationError('the chunk does not fit the upload', [
        { path: 'body', message: `with this chunk of ${bytes} bytes the chunks would add up to ${total} bytes, more than the declared totalBytes ${record.totalBytes}` },
      ]);
    }
    try {
      await ref.update({ [`sizes.${index}`]: bytes, bytes: total }, { lastUpdateTime: snap.updateTime! });
      return;
    } catch (error) {
      if (!isConflict(error)) throw error;
      await afterConflict(round, 'chunk upload');
    }
  }
}

/**
 * Marks an upload complete once every declared chunk is in the blob store and their sizes add up, freeing the
 * owner's slot in the same commit. Throws `AudioStateError` naming the missing chunks otherwise. A no-op for an upload
 * already complete; concurrent calls agree (one commits, the others find it complete).
 */
export async function completeUpload(db: Firestore, blobs: BlobStore, audioId: string): Promise<AudioRecord> {
  for (let round = 0; ; round++) {
    const current = await readAudio(db, audioId);
    if (!current) throw new AudioNotFoundError(audioId);
    const { record, updateTime } = current;
    if (record.status !== 'uploading') return record;
    const ledger = await ledgerRef(db, audioId).get();
    const { missing, bytes } = await inspectChunks(blobs, audioId, record.chunkCount);
    if (missing.length) throw new AudioStateError(audioId, record.status, 'complete the upload of', `chunk${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${record.chunkCount} missing`);
    if (bytes !== record.totalBytes) throw new AudioStateError(audioId, record.status, 'complete the upload of', `chunks add up to ${bytes} bytes, not the declared ${record.totalBytes}`);
    const batch = db.batch();
    batch.update(audioRef(db, audioId), { status: 'uploaded', abandonAt: null, uploadSlot: null, uploadedAt: FieldValue.serverTimestamp(), updatedAt: FieldValue.serverTimestamp() }, { lastUpdateTime: updateTime });
    // A chunk counted after the inspection makes this commit fail, and the next round inspects again.
    if (ledger.exists) batch.delete(ledger.ref, { lastUpdateTime: ledger.updateTime! });
    if (record.uploadSlot !== null) applyStaged(batch, [releaseSlot(uploadSlots(db, record.ownerUid), record.uploadSlot)]);
    try {
      await batch.commit();
    } catch (error) {
      if (!isConflict(error)) throw error;
      await afterConflict(round, 'upload completion');
      continue;
    }
    return (await getAudio(db, audioId))!;
  }
}

/** What `expireUploads` looks for: uploads in flight past their `abandonAt` (checked against firestore.indexes.json). */
export const ABANDONED_UPLOADS_QUERY: QuerySpec = { equals: ['status'], range: 'abandonAt', orderBy: [['abandonAt', 'asc']] };

/**
 * Gives up on uploads still incomplete past their `abandonAt` (abandoned, or refused by `process` for missing or
 * mis-sized chunks): each becomes `expired`, frees its owner's slot and has its chunks deleted; its record then carries
 * an `expireAt` for a TTL policy. For a scheduler (the functions' sweep, `fireflow serve`'s timer). Returns the ids.
 */
export async function expireUploads(db: Firestore, blobs: BlobStore, options: { now?: number; limit?: number } = {}): Promise<string[]> {
  const now = options.now ?? Date.now();
  const query = applyEquals(db.collection(AUDIO_COLLECTION), ABANDONED_UPLOADS_QUERY, { status: 'uploading' }).where(ABANDONED_UPLOADS_QUERY.range!, '<', Timestamp.fromMillis(now));
  const snap = await applyOrder(query, ABANDONED_UPLOADS_QUERY, false).limit(options.limit ?? 100).get();
  const expired: string[] = [];
  for (const doc of snap.docs) {
    const batch = db.batch();
    const error: TaskError = { name: 'UploadExpiredError', message: 'the upload was not completed in time; its chunks were deleted', retriable: false };
    batch.update(doc.ref, { status: 'expired', error, abandonAt: null, uploadSlot: null, expireAt: Timestamp.fromMillis(now + EXPIRED_RECORD_KEPT_MS), updatedAt: FieldValue.serverTimestamp() }, { lastUpdateTime: doc.updateTime });
    batch.delete(ledgerRef(db, doc.id));
    const slot = doc.get('uploadSlot') as number | null | undefined;
    if (typeof slot === 'number') applyStaged(batch, [releaseSlot(uploadSlots(db, (doc.get('ownerUid') as string | null) ?? null), slot)]);
    try {
      await batch.commit();
    } catch (e) {
      if (isConflict(e)) continue; // completed (or expired by another sweep) meanwhile
      throw e;
    }
    await Promise.all((await blobs.list(chunkPrefix(doc.id))).map((b) => blobs.delete(b.key)));
    expired.push(doc.id);
  }
  return expired;
}

sharedIdentity(AudioNotFoundError, 'AudioNotFoundError');
sharedIdentity(AudioStateError, 'AudioStateError');
