// Checks an HTTP response against what /openapi.json declares for it, so a handler that answers something its
// document does not say (a field added, one renamed, a status or content type undeclared) fails the test that made
// the request. Used by the API harness on every call.
import { Ajv, type ValidateFunction } from 'ajv';

interface Operation {
  method: string;
  pattern: RegExp;
  template: string;
  responses: Record<string, { content?: Record<string, { schema?: object }> }>;
}

export interface ResponseChecker {
  /** What is wrong with this response, or null when it is what the document declares (or no operation matches). */
  problem(method: string, path: string, status: number, contentType: string | null, body: unknown): string | null;
}

export function responseChecker(doc: unknown): ResponseChecker {
  const document = doc as { paths: Record<string, Record<string, { responses: Operation['responses'] }>> };
  // OpenAPI 3.0 schemas are JSON Schema plus `nullable`, which Ajv understands; formats such as `binary` are not checked.
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const operations: Operation[] = Object.entries(document.paths).flatMap(([template, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase(),
      template,
      // Literal segments before parameters, so /tasks/count is not taken for /tasks/{id}.
      pattern: new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}$`),
      responses: op.responses,
    })),
  ).sort((a, b) => (a.template.match(/\{/g)?.length ?? 0) - (b.template.match(/\{/g)?.length ?? 0));
  const compiled = new Map<object, ValidateFunction>();

  return {
    problem(method, path, status, contentType, body) {
      const op = operations.find((o) => o.method === method && o.pattern.test(path.split('?')[0]!));
      if (!op) return null;
      const declared = op.responses[String(status)] ?? op.responses[`${String(status)[0]}XX`];
      const where = `${method} ${op.template} → ${status}`;
      if (!declared) return `${where}: status not declared (declared: ${Object.keys(op.responses).join(', ')})`;
      const media = contentType?.split(';')[0]!.trim() ?? null;
      const content = declared.content;
      if (!content) return media === null ? null : `${where}: declared without a body, answered ${media}`;
      if (!media || !content[media]) return `${where}: answered ${media ?? 'no content type'}, declared ${Object.keys(content).join(', ')}`;
      const schema = content[media]!.schema;
      if (!schema || media !== 'application/json') return null;
      const validate = compiled.get(schema) ?? ajv.compile(schema);
      compiled.set(schema, validate);
      if (validate(body)) return null;
      return `${where}: body does not match its schema: ${ajv.errorsText(validate.errors, { dataVar: 'body' })}`;
    },
  };
}
