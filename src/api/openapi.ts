import { z } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';
import { API_ERROR_STATUS } from './errors.js';
import type { Route } from './route.js';

const errorBody = z.object({
  error: z.object({ code: z.enum(Object.keys(API_ERROR_STATUS) as [string, ...string[]]), message: z.string(), details: z.unknown() }),
});

const schemaOf = (schema: z.ZodTypeAny, pipeStrategy: 'all' | 'output' = 'all') =>
  zodToJsonSchema(schema, { target: 'openApi3', $refStrategy: 'none', pipeStrategy }) as Record<string, unknown>;

/** Express `/tasks/:id` → OpenAPI `/tasks/{id}`. */
export const openApiPath = (path: string) => path.replace(/:(\w+)/g, '{$1}');

/** Parameters of one location (path or query) from the route's zod object schema. */
function parameters(schema: z.ZodTypeAny | undefined, location: 'path' | 'query'): unknown[] {
  if (!schema) return [];
  // A parameter is text decoded by a pipe (`decimal.pipe(z.number()…)`): the value it stands for is the pipe's output,
  // which URL serialisation writes as text. Describing both sides would be `allOf: [string, number]`, which no value is.
  const json = schemaOf(schema, 'output') as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, s]) => ({ name, in: location, required: location === 'path' || (json.required ?? []).includes(name), schema: s }));
}

/** A route's response: JSON of its schema, or bytes of its content type (text as a string, anything else binary). */
function responseObject({ description, schema, contentType, links }: Route['responses'][number]): Record<string, unknown> {
  if (schema) return { description, content: { 'application/json': { schema: schemaOf(schema) } }, ...(links ? { links } : {}) };
  if (contentType) return { description, content: { [contentType]: { schema: contentType.startsWith('text/') ? { type: 'string' } : { type: 'string', format: 'binary' } } } };
  return { description };
}

/** The OpenAPI 3.0 document of the routes, generated from the same zod schemas the app validates with. */
export function openApiDocument(routes: readonly Route[], options: { maxChunkBytes: number }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const operation: Record<string, unknown> = {
      summary: r.summary,
      operationId: `${r.method}${openApiPath(r.path).replace(/[^\w]+(\w)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`,
      parameters: [
        ...parameters(r.params, 'path'),
        ...parameters(r.query, 'query'),
        ...Object.entries(r.binary?.headers ?? {}).map(([name, { description, pattern }]) => ({ name, in: 'header', required: true, description, schema: { type: 'string', pattern } })),
      ],
      responses: {
        ...Object.fromEntries(Object.entries(r.responses).map(([status, response]) => [status, responseObject(response)])),
        '4XX': { description: 'The request was refused; `error.code` says why', content: { 'application/json': { schema: schemaOf(errorBody) } } },
        '5XX': {
          description: '`internal` (500: logged, message withheld) or `unavailable` (503, with Retry-After)',
          content: { 'application/json': { schema: schemaOf(errorBody) } },
        },
      },
      ...(r.auth === false ? { security: [] } : {}),
    };
    if (r.binary) {
      const content = Object.fromEntries(r.binary.contentTypes.map((t) => [t, { schema: { type: 'string', format: 'binary', maxLength: options.maxChunkBytes } }]));
      operation.requestBody = { required: true, content };
    } else if (r.body) {
      operation.requestBody = { required: true, content: { 'application/json': { schema: schemaOf(r.body) } } };
    }
    (paths[openApiPath(r.path)] ??= {})[r.method] = operation;
  }
  return {
    openapi: '3.0.3',
    info: { title: 'fireflow', version: '0.1.0', description: 'Durable audio processing on Firebase: uploads, pipelines and their tasks.' },
    components: { securitySchemes: { firebase: { type: 'http', scheme: 'bearer', bearerFormat: 'Firebase ID token' } } },
    security: [{ firebase: [] }],
    paths,
  };
}
