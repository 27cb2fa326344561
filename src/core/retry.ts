import { z } from 'zod';
import type { ResolvedRetryPolicy } from './task.js';

export const RETRY_POLICY_NAMES = ['standard', 'aggressive', 'high_priority', 'long_running', 'no_retry'] as const;
export type RetryPolicyName = (typeof RETRY_POLICY_NAMES)[number];

export interface RetryPolicyOptions {
  /** Retries after the first attempt. */
  maxRetries: number;
  /** Backoff window of the first retry, in ms. */
  baseDelayMs: number;
  /** Cap of the backoff window, in ms. @default 1 hour */
  maxDelayMs?: number;
}

const HOUR_MS = 3_600_000;

/** The presets (retries, first backoff). Each retry's window doubles until `maxDelayMs`. */
export const RETRY_POLICIES: Record<RetryPolicyName, RetryPolicyOptions> = {
  standard: { maxRetries: 3, baseDelayMs: 60_000 },
  aggressive: { maxRetries: 5, baseDelayMs: 30_000 },
  high_priority: { maxRetries: 3, baseDelayMs: 120_000 },
  long_running: { maxRetries: 2, baseDelayMs: 300_000 },
  no_retry: { maxRetries: 0, baseDelayMs: 0 },
};

export type RetrySpec = RetryPolicyName | ({ name?: string } & RetryPolicyOptions);
export type RetryOverrides = Partial<Record<RetryPolicyName, Partial<RetryPolicyOptions>>>;

function checkNumber(name: string, value: unknown, integer: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new TypeError(`retry.${name} must be a${integer ? ' whole' : ''} number >= 0, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Resolves a preset name or custom policy into the numbers stored on a task.
 * `overrides` adjusts presets per instance (tests shrink the delays so they run fast).
 */
export function resolveRetryPolicy(spec: RetrySpec = 'standard', overrides: RetryOverrides = {}): ResolvedRetryPolicy {
  let name: string;
  let options: RetryPolicyOptions;
  if (typeof spec === 'string') {
    const preset = RETRY_POLICIES[spec as RetryPolicyName];
    if (!preset) {
      throw new TypeError(`unknown retry policy ${JSON.stringify(spec)}; expected one of ${RETRY_POLICY_NAMES.join(', ')} or an object`);
    }
    name = spec;
    options = { ...preset, ...overrides[spec as RetryPolicyName] };
  } else {
    name = spec.name ?? 'custom';
    options = spec;
  }
  const maxRetries = checkNumber('maxRetries', options.maxRetries, true);
  const baseDelayMs = checkNumber('baseDelayMs', options.baseDelayMs, false);
  const maxDelayMs = checkNumber('maxDelayMs', options.maxDelayMs ?? Math.max(HOUR_MS, baseDelayMs), false);
  return { name, maxAttempts: maxRetries + 1, baseDelayMs, maxDelayMs };
}

/**
 * Delay before the attempt after `failedAttempt` (1-based): "full jitter" — uniform in
 * [0, min(maxDelayMs, baseDelayMs · 2^(failedAttempt−1))] — so that failures that happened together spread out.
 */
export function backoffDelayMs(policy: ResolvedRetryPolicy, failedAttempt: number, random: () => number = Math.random): number {
  const window = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, failedAttempt - 1));
  return Math.round(random() * window);
}

const overridesSchema = z
  .record(z.enum(RETRY_POLICY_NAMES), z.object({ maxRetries: z.number().int().min(0), baseDelayMs: z.number().min(0), maxDelayMs: z.number().min(0) }).partial().strict())
  .refine((o) => Object.keys(o).length > 0, 'name at least one preset');

/**
 * Preset overrides from configuration text (an environment variable), e.g. `{"long_running":{"baseDelayMs":2000}}`;
 * undefined or empty gives none. Anything else that is not such an object throws a TypeError quoting it.
 */
export function parseRetryOverrides(text: string | undefined): RetryOverrides {
  if (text === undefined || text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new TypeError(`retry overrides must be JSON such as {"long_running":{"baseDelayMs":2000}}, got ${JSON.stringify(text)}`);
  }
  const parsed = overridesSchema.safeParse(value);
  if (!parsed.success) throw new TypeError(`retry overrides ${JSON.stringify(text)} are invalid: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  return parsed.data as RetryOverrides;
}
