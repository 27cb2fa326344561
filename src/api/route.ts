import type { Readable } from 'node:stream';
import type { z } from 'zod';
import type { Caller } from './auth.js';

/** What a handler answers: a JSON body (or Prometheus text), a status (default 200) and extra headers. */
export interface Reply {
  status?: number;
  body?: unknown;
  /** Sent as `text/plain; version=0.0.4` instead of JSON (the Prometheus exposition format). */
  text?: string;
  /** Bytes streamed as they are (e.g. audio from the blob store), with their content type. */
  stream?: { contentType: string; body: Readable; bytes?: number };
  headers?: Record<string, string>;
}

export interface HandlerInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** The signed-in caller; routes with `auth: false` get a placeholder with an empty uid. */
  caller: Caller;
  /** Aborted when the client disconnects before the answer is sent. */
  signal: AbortSignal;
  header(name: string): string | undefined;
}

/**
 * One endpoint, declared once: the app validates params, query and body with these schemas (the parsed values are
 * what the handler gets) and the OpenAPI document is generated from the same declarations, so the two cannot drift.
 */
export interface Route<P extends z.ZodTypeAny = z.ZodTypeAny, Q extends z.ZodTypeAny = z.ZodTypeAny, B extends z.ZodTypeAny = z.ZodTypeAny> {
  method: 'get' | 'post' | 'put';
  /** Express syntax: `/tasks/:id`. */
  path: string;
  summary: string;
  /** Needs a Firebase ID token. @default true */
  auth?: boolean;
  params?: P;
  query?: Q;
  /** The body, validated with this schema: JSON, or with `binary` a Buffer (`z.instanceof(Buffer)`). */
  body?: B;
  /** The body is raw bytes of these content types, up to the API's chunk size limit; `headers` documents the ones it needs. */
  binary?: { contentTypes: string[]; headers: Record<string, { description: string; pattern: string }> };
  /**
   * Status → what it answers, for the OpenAPI document: a JSON body of `schema`, or bytes of `contentType` (text, audio).
   * The API tests validate every response against it. Error bodies are added for every route.
   */
  responses: Record<number, { description: string; schema?: z.ZodTypeAny; contentType?: string; links?: Record<string, ResponseLink> }>;
  handle(input: HandlerInput<z.output<P>, z.output<Q>, z.output<B>>): Promise<Reply>;
}

/**
 * An OpenAPI link: which operation the answer's values feed, e.g. the audio id of a new upload into its chunk route
 * (`$response.body#/audioId`). Clients and API fuzzers follow them from one call to the next.
 */
export interface ResponseLink {
  operationId: string;
  parameters: Record<string, string>;
}

/** Declares a route with its types inferred from its schemas. */
export function route<P extends z.ZodTypeAny, Q extends z.ZodTypeAny, B extends z.ZodTypeAny>(r: Route<P, Q, B>): Route {
  return r as unknown as Route;
}
