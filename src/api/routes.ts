import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Firestore } from 'firebase-admin/firestore';
import { z } from 'zod';
import { AUDIO_PIPELINE, AUDIO_STAGES } from '../audio/pipeline.js';
import { AUDIO_STATUSES, AudioNotFoundError, MAX_CHUNKS, completeUpload, createUpload, getAudio, newUploadSchema, reserveChunk, type AudioRecord } from '../audio/record.js';
import { chunkKey } from '../audio/reassemble.js';
import type { BlobStore } from '../blobs/blob-store.js';
import { TaskNotFoundError } from '../core/errors.js';
import { ID_PATTERN, ID_RULE } from '../core/ids.js';
import { TASK_STATUSES, type Task } from '../core/task.js';
import type { Fireflow } from '../fireflow.js';
import { loadChapters, loadChunks, loadGraph, loadQuestions } from '../audio/text-store.js';
import { loadTranscript } from '../audio/transcript-store.js';
import type { Caller } from './auth.js';
import { ApiError } from './errors.js';
import { estimateSeconds, type StageRates } from './estimate.js';
import { prometheusText } from './prometheus.js';
import { parseRange } from './range.js';
import type { AccessLinks } from './access.js';
import { route, type Route } from './route.js';
import { subtitleCues, toSrt, toWebVtt } from '../text/subtitles.js';

/** What the speech routes answer. */
const SPEECH_RESPONSES = {
  200: { description: 'audio/wav bytes', contentType: 'audio/wav' },
  206: { description: 'the bytes the Range header asked for (one range; several are answered whole)', contentType: 'audio/wav' },
};

export interface RouteDeps {
  /** Signs and checks playback links. */
  links: AccessLinks;
  /** How long a playback link lasts, ms. */
  playbackLinkTtlMs: number;
  fireflow: Fireflow;
  db: Firestore;
  blobs: BlobStore;
  maxActivePipelinesPerUser: number;
  maxUploadsInFlightPerUser: number;
  uploadTtlMs: number;
  stageRates: () => Promise<StageRates>;
}

const id = z.string().regex(ID_PATTERN, ID_RULE);
/** A whole number written in plain decimal digits: `z.coerce` would also take ' 5', '0x10' and '1e1'. */
const decimal = z
  .string()
  .regex(/^\d{1,9}$/, 'must be a whole number in decimal digits')
  .transform(Number);
const SHA256_HEADER = 'x-chunk-sha256';

/** A task as the API shows it: the document minus the write token, an internal detail of the store. */
function taskView(task: Task): Omit<Task, 'writeToken'> {
  const { writeToken: _token, ...view } = task;
  return view;
}

/** Someone else's task or audio is answered exactly like one that does not exist. */
function mayAccess(caller: Caller, ownerUid: string | null): boolean {
  return caller.admin || ownerUid === caller.uid;
}

/**
 * `read(key)`, with concurrent calls for the same key sharing one call. Many clients polling one task (a progress
 * bar in every open tab) then cost one Firestore read per round trip instead of one per request. A request that joins
 * a read already in flight gets a state at most that read's latency older than its arrival.
 */
function coalesced<T>(read: (key: string) => Promise<T>): (key: string) => Promise<T> {
  const inFlight = new Map<string, Promise<T>>();
  return (key) => {
    let pending = inFlight.get(key);
    if (!pending) {
      pending = read(key).finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    return pending;
  };
}

async function ownTask(ff: Fireflow, caller: Caller, taskId: string, read: (id: string) => Promise<Task | null> = (id) => ff.find(id)): Promise<Task> {
  const task = await read(taskId);
  if (!task || !mayAccess(caller, task.ownerUid)) throw new TaskNotFoundError(taskId);
  return task;
}

async function ownAudio(db: Firestore, caller: Caller, audioId: string): Promise<AudioRecord> {
  const record = await getAudio(db, audioId);
  if (!record || !mayAccess(caller, record.ownerUid)) throw new AudioNotFoundError(audioId);
  return record;
}

/** A non-admin lists and counts their own tasks only; naming another owner is refused, not silently narrowed. */
function ownerFilter(caller: Caller, ownerUid: string | undefined): string | undefined {
  if (caller.admin) return ownerUid;
  if (ownerUid !== undefined && ownerUid !== caller.uid) throw new ApiError('permission-denied', 'only admins may list the tasks of other users');
  return caller.uid;
}

const taskFilterQuery = {
  status: z.enum(TASK_STATUSES).optional(),
  type: z.string().min(1).max(200).optional(),
  ownerUid: id.optional(),
};

const processBody = z
  .object({
    audioId: id,
    stages: z.array(z.enum(AUDIO_STAGES)).min(1).max(AUDIO_STAGES.length).optional(),
    priority: z.number().int().min(1).max(10).optional(),
    /** The same key (per user) returns the same task instead of starting another. */
    idempotencyKey: z.string().min(1).max(200).optional(),
  })
  .strict();

const taskSchema = z.object({ id: z.string(), type: z.string(), status: z.enum(TASK_STATUSES), progress: z.number() }).passthrough();

export function apiRoutes(deps: RouteDeps): Route[] {
  const { fireflow: ff, db, blobs } = deps;
  const readTask = coalesced((id) => ff.find(id));

  /** The speech WAV of `record`, or the bytes `range` asks for. */
  async function speechReply(record: AudioRecord, range: string | undefined) {
    const stat = record.speechKey ? await blobs.stat(record.speechKey) : null;
    if (!record.speechKey || !stat) throw new ApiError('failed-precondition', `audio ${JSON.stringify(record.id)} has not been reassembled yet (${record.status})`);
    const headers = { 'cache-control': 'private, max-age=3600', 'accept-ranges': 'bytes' };
    const bytes = parseRange(range, stat.size);
    if (bytes === 'unsatisfiable') {
      throw new ApiError('range-not-satisfiable', `the range ${JSON.stringify(range)} is outside the recording's ${stat.size} bytes`, null, { 'content-range': `bytes */${stat.size}` });
    }
    if (bytes) {
      const body = blobs.read(record.speechKey, bytes);
      return { status: 206, stream: { contentType: 'audio/wav', body, bytes: bytes.end - bytes.start + 1 }, headers: { ...headers, 'content-range': `bytes ${bytes.start}-${bytes.end}/${stat.size}` } };
    }
    return { stream: { contentType: 'audio/wav', body: blobs.read(record.speechKey), bytes: stat.size }, headers };
  }

  return [
    route({
      method: 'get',
      path: '/healthz',
      summary: 'Whether the store is reachable (one Firestore read).',
      auth: false,
      responses: { 200: { description: 'Firestore answered', schema: z.object({ ok: z.literal(true), firestoreMs: z.number() }) } },
      async handle() {
        const started = performance.now();
        try {
          await Promise.race([
            ff.find('_healthz'),
            new Promise((_, reject) => setTimeout(() => reject(new Error('timed out after 5 s')), 5000).unref()),
          ]);
        } catch (error) {
          throw new ApiError('unavailable', `Firestore is not reachable: ${error instanceof Error ? error.message : String(error)}`);
        }
        return { body: { ok: true, firestoreMs: Math.round((performance.now() - started) * 10) / 10 } };
      },
    }),
    route({
      method: 'get',
      path: '/metrics',
      summary: 'Task metrics of this process in the Prometheus text format.',
      auth: false,
      responses: { 200: { description: 'Prometheus text exposition format 0.0.4', contentType: 'text/plain' } },
      async handle() {
        return { text: prometheusText(ff.metrics()) };
      },
    }),
    route({
      method: 'post',
      path: '/audio',
      summary: 'Declare an upload; its chunks are then sent with PUT /audio/{audioId}/chunks/{index}.',
      body: newUploadSchema,
      responses: {
        201: {
          description: 'The upload was created',
          schema: z.object({ audioId: z.string(), status: z.string(), chunkCount: z.number(), totalBytes: z.number() }),
          links: {
            sendChunk: { operationId: 'putAudioAudioIdChunksIndex', parameters: { audioId: '$response.body#/audioId', index: '0' } },
            results: { operationId: 'getAudioAudioIdResults', parameters: { audioId: '$response.body#/audioId' } },
            speech: { operationId: 'getAudioAudioIdSpeech', parameters: { audioId: '$response.body#/audioId' } },
          },
        },
      },
      async handle({ body, caller }) {
        const record = await createUpload(db, body, { ownerUid: caller.uid, maxInFlight: deps.maxUploadsInFlightPerUser, ttlMs: deps.uploadTtlMs });
        return { status: 201, body: { audioId: record.id, status: record.status, chunkCount: record.chunkCount, totalBytes: record.totalBytes } };
      },
    }),
    route({
      method: 'put',
      path: '/audio/:audioId/chunks/:index',
      summary: 'Upload one chunk (raw bytes). Sending the same chunk again replaces it; chunks of a finalised upload are refused.',
      params: z.object({ audioId: id, index: decimal.pipe(z.number().int().min(0).max(MAX_CHUNKS - 1)) }).strict(),
      body: z.instanceof(Buffer),
      binary: {
        contentTypes: ['application/octet-stream', 'audio/*'],
        headers: { [SHA256_HEADER]: { description: 'SHA-256 of the chunk, 64 hex digits', pattern: '^[0-9a-fA-F]{64}$' } },
      },
      responses: { 200: { description: 'The chunk is stored', schema: z.object({ audioId: z.string(), index: z.number(), bytes: z.number() }) } },
      async handle({ params, body, caller, header }) {
        const declared = header(SHA256_HEADER);
        if (!declared || !/^[0-9a-fA-F]{64}$/.test(declared)) {
          throw ApiError.invalid(`send the chunk's SHA-256 in the ${SHA256_HEADER} header`, [{ path: `headers.${SHA256_HEADER}`, message: `must be 64 hex digits, got ${JSON.stringify(declared ?? null)}` }]);
        }
        if (body.length === 0) throw ApiError.invalid('the chunk is empty', [{ path: 'body', message: 'must not be empty' }]);
        const actual = createHash('sha256').update(body).digest('hex');
        if (actual !== declared.toLowerCase()) {
          throw ApiError.invalid('the chunk does not match its checksum: it was corrupted on the way, send it again', [{ path: `headers.${SHA256_HEADER}`, message: `declared ${declared.toLowerCase()}, received bytes hash to ${actual}` }]);
        }
        const record = await ownAudio(db, caller, params.audioId);
        if (params.index >= record.chunkCount) {
          throw ApiError.invalid(`the upload has ${record.chunkCount} chunks`, [{ path: 'params.index', message: `must be below ${record.chunkCount}, got ${params.index}` }]);
        }
        if (record.status !== 'uploading') throw new ApiError('failed-precondition', `the upload of audio ${JSON.stringify(record.id)} is finalised (${record.status}); its chunks cannot change`);
        // Counted before it is stored: an upload never holds more bytes than it declared.
        await reserveChunk(db, record, params.index, body.length);
        await blobs.put(chunkKey(record.id, params.index), body);
        return { body: { audioId: record.id, index: params.index, bytes: body.length } };
      },
    }),
    route({
      method: 'post',
      path: '/audio/process',
      summary: 'Finalise the upload if needed and start the audio pipeline on it.',
      body: processBody,
      responses: {
        202: {
          description: 'The pipeline task (new, or the one this idempotency key already started)',
          schema: z.object({ taskId: z.string(), audioId: z.string(), status: z.string(), estimatedSeconds: z.number() }),
          links: {
            task: { operationId: 'getTasksId', parameters: { id: '$response.body#/taskId' } },
            cancel: { operationId: 'postTasksIdCancel', parameters: { id: '$response.body#/taskId' } },
            retry: { operationId: 'postTasksIdRetry', parameters: { id: '$response.body#/taskId' } },
            results: { operationId: 'getAudioAudioIdResults', parameters: { audioId: '$response.body#/audioId' } },
          },
        },
      },
      async handle({ body, caller }) {
        const record = await ownAudio(db, caller, body.audioId);
        const owner = record.ownerUid ?? caller.uid;
        const taskId = body.idempotencyKey ? `process-${createHash('sha256').update(`${caller.uid}\n${body.idempotencyKey}`).digest('hex').slice(0, 40)}` : undefined;
        let task = taskId ? await ff.find(taskId) : null;
        if (task && (task.params as { audioId?: string } | null)?.audioId !== body.audioId) {
          throw new ApiError('failed-precondition', 'this idempotency key was already used to process another audio');
        }
        if (!task) {
          if (record.status === 'uploading') await completeUpload(db, blobs, record.id);
          // Concurrent requests for one upload: one starts the pipeline; with the same key the others get that task
          // back, without one they get a 409 naming it (the audio is already being processed).
          const started = await ff.submit(AUDIO_PIPELINE, { audioId: record.id }, {
            ownerUid: owner,
            ownerLimit: deps.maxActivePipelinesPerUser,
            ...(taskId ? { id: taskId } : {}),
            ...(body.priority ? { priority: body.priority } : {}),
            ...(body.stages ? { stages: body.stages } : {}),
          });
          task = await ff.get(started);
        }
        const estimatedSeconds = estimateSeconds(record, await deps.stageRates(), body.stages ?? AUDIO_STAGES);
        return { status: 202, body: { taskId: task.id, audioId: record.id, status: task.status, estimatedSeconds } };
      },
    }),
    route({
      method: 'get',
      path: '/audio/:audioId/results',
      summary: 'Everything the pipeline stored for a recording: transcript, chunks, graph (capped) with its summary, chapters, questions.',
      params: z.object({ audioId: id }).strict(),
      responses: {
        200: {
          description: 'Each part is null until its stage has run',
          schema: z.object({ audio: z.object({ id: z.string(), status: z.enum(AUDIO_STATUSES) }).passthrough(), transcript: z.unknown(), chunks: z.unknown(), graph: z.unknown(), chapters: z.unknown(), questions: z.unknown() }),
        },
      },
      async handle({ params, caller, signal }) {
        const record = await ownAudio(db, caller, params.audioId);
        const [transcript, chunks, graph, chapters, questions] = await Promise.all([
          loadTranscript(db, record.id),
          loadChunks(db, record.id),
          loadGraph(db, record.id),
          loadChapters(db, record.id),
          loadQuestions(db, record.id),
        ]);
        // A long transcript is megabytes of JSON: not worth building for a client that has gone.
        signal.throwIfAborted();
        return { body: { audio: record, transcript, chunks, graph, chapters, questions } };
      },
    }),
    ...(
      [
        ['vtt', 'text/vtt', 'WebVTT (what an HTML <track> reads)', toWebVtt],
        ['srt', 'application/x-subrip', 'SubRip', toSrt],
      ] as const
    ).map(([ext, contentType, what, write]) =>
      route({
        method: 'get',
        path: `/audio/:audioId/subtitles.${ext}`,
        summary: `Subtitles as ${what}: cues of at most 2 lines of 42 characters and 7 s, cut at sentence ends, pauses and commas.`,
        params: z.object({ audioId: id }).strict(),
        responses: { 200: { description: `${what} text`, contentType } },
        async handle({ params, caller }) {
          const record = await ownAudio(db, caller, params.audioId);
          const transcript = await loadTranscript(db, record.id);
          if (!transcript) throw new ApiError('failed-precondition', `audio ${JSON.stringify(record.id)} has no transcript yet (${record.status})`);
          const text = write(subtitleCues(transcript.words));
          return {
            stream: { contentType: `${contentType}; charset=utf-8`, body: Readable.from([Buffer.from(text)]), bytes: Buffer.byteLength(text) },
            headers: { 'cache-control': 'private, max-age=60', 'content-disposition': `inline; filename="${record.id}.${ext}"` },
          };
        },
      }),
    ),
    route({
      method: 'get',
      path: '/audio/:audioId/speech',
      summary: 'The recording as it was transcribed (16 kHz mono WAV), for playback next to the transcript; a Range header gets those bytes (206).',
      params: z.object({ audioId: id }).strict(),
      responses: SPEECH_RESPONSES,
      async handle({ params, caller, header }) {
        return speechReply(await ownAudio(db, caller, params.audioId), header('range'));
      },
    }),
    route({
      method: 'post',
      path: '/audio/:audioId/playback',
      summary: 'A short-lived link to the recording that an <audio src> can play and seek (it cannot send a bearer token).',
      params: z.object({ audioId: id }).strict(),
      responses: {
        200: {
          description: 'The link, relative to the API, and when it expires',
          schema: z.object({ path: z.string(), expiresAt: z.string() }),
        },
      },
      async handle({ params, caller }) {
        const record = await ownAudio(db, caller, params.audioId);
        const expiresAt = Date.now() + deps.playbackLinkTtlMs;
        return { body: { path: `/audio/${encodeURIComponent(record.id)}/stream?access=${deps.links.sign(record.id, expiresAt)}`, expiresAt: new Date(expiresAt).toISOString() } };
      },
    }),
    route({
      method: 'get',
      path: '/audio/:audioId/stream',
      summary: 'The recording, as `/speech` serves it (ranges included), to whoever holds a link from `POST /audio/:audioId/playback` that has not expired.',
      auth: false,
      params: z.object({ audioId: id }).strict(),
      query: z.object({ access: z.string().max(100) }).strict(),
      responses: SPEECH_RESPONSES,
      async handle({ params, query, header }) {
        if (!deps.links.verify(params.audioId, query.access)) throw new ApiError('unauthenticated', 'this playback link is not valid or has expired: ask POST /audio/:audioId/playback for a new one');
        const record = await getAudio(db, params.audioId);
        if (!record) throw new ApiError('not-found', `no audio ${JSON.stringify(params.audioId)}`);
        return speechReply(record, header('range'));
      },
    }),
    route({
      method: 'get',
      path: '/tasks/count',
      summary: 'How many of your tasks match (a Firestore count aggregation).',
      query: z.object(taskFilterQuery).strict(),
      responses: { 200: { description: 'The count', schema: z.object({ count: z.number() }) } },
      async handle({ query, caller }) {
        return { body: { count: await ff.count({ ...query, ownerUid: ownerFilter(caller, query.ownerUid) }) } };
      },
    }),
    route({
      method: 'get',
      path: '/tasks',
      summary: 'Your tasks, newest first, filtered by status and type; page with nextCursor.',
      query: z
        .object({ ...taskFilterQuery, limit: decimal.pipe(z.number().int().min(1).max(100)).optional(), cursor: z.string().min(1).max(512).optional() })
        .strict(),
      responses: {
        200: {
          description: 'A page of tasks; `invalid` lists documents on it that failed validation (reported, never returned as tasks)',
          schema: z.object({ tasks: z.array(taskSchema), nextCursor: z.string().optional(), invalid: z.array(z.object({ id: z.string(), message: z.string() })) }),
        },
      },
      async handle({ query, caller }) {
        const { limit, cursor, ...filter } = query;
        const page = await ff.list({ ...filter, ownerUid: ownerFilter(caller, filter.ownerUid) }, { limit: limit ?? 20, ...(cursor ? { cursor } : {}) });
        return { body: { tasks: page.tasks.map(taskView), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}), invalid: page.invalid } };
      },
    }),
    route({
      method: 'get',
      path: '/tasks/:id',
      summary: 'One task: status, progress, stages, result or error.',
      params: z.object({ id }).strict(),
      responses: { 200: { description: 'The task', schema: taskSchema } },
      async handle({ params, caller }) {
        return { body: taskView(await ownTask(ff, caller, params.id, readTask)) };
      },
    }),
    route({
      method: 'post',
      path: '/tasks/:id/cancel',
      summary: 'Cancel a task: pending → cancelled now; running → its handler is aborted.',
      params: z.object({ id }).strict(),
      responses: { 200: { description: 'The task after the request', schema: taskSchema } },
      async handle({ params, caller }) {
        await ownTask(ff, caller, params.id);
        return { body: taskView(await ff.cancel(params.id)) };
      },
    }),
    route({
      method: 'post',
      path: '/tasks/:id/retry',
      summary: 'Run a failed or cancelled task again; a pipeline resumes at the stage that stopped it.',
      params: z.object({ id }).strict(),
      responses: { 200: { description: 'The task after the request', schema: taskSchema } },
      async handle({ params, caller }) {
        await ownTask(ff, caller, params.id);
        return { body: taskView(await ff.retry(params.id)) };
      },
    }),
  ];
}
