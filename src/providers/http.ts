import { NonRetriableError, RetryAfterError } from '../core/errors.js';

/** Wait after a 429 that names no time, ms. */
const DEFAULT_RETRY_AFTER_MS = 30_000;

/** `Retry-After` as ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * One HTTP call to a provider's JSON API, with the outcome mapped once: 2xx → the parsed body; 429 → `RetryAfterError`
 * (its `Retry-After`, else 30 s); 408, 5xx and network errors → a plain (retriable) error; any other 4xx → a
 * `NonRetriableError`, since repeating a request the provider refused (bad key, bad input, no permission) cannot
 * succeed. An aborted `signal` rejects with its reason.
 */
export async function fetchJson(provider: string, fetchImpl: typeof fetch, url: string, init: RequestInit): Promise<unknown> {
  let res: Response;
  try {
    res = await fetchImpl(url, init);
  } catch (error) {
    init.signal?.throwIfAborted();
    throw new Error(`${provider}: request failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  const text = await res.text();
  if (res.ok) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new Error(`${provider} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
    }
  }
  let message = text.slice(0, 500);
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } | string };
    const m = typeof body.error === 'string' ? body.error : body.error?.message;
    if (typeof m === 'string') message = m;
  } catch {
    // not JSON: keep the text
  }
  if (res.status === 429) throw new RetryAfterError(retryAfterMs(res.headers.get('retry-after')) ?? DEFAULT_RETRY_AFTER_MS, `${provider} is rate limiting: ${message}`);
  if (res.status === 408 || res.status >= 500) throw new Error(`${provider} answered ${res.status}: ${message}`);
  throw new NonRetriableError(`${provider} refused the request (${res.status}): ${message}`);
}
