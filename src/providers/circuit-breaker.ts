import { NonRetriableError, RetryAfterError, isAbortReason, sharedIdentity } from '../core/errors.js';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. @default 5 */
  failureThreshold?: number;
  /** How long an open circuit refuses calls before it lets one trial call through, ms. @default 30_000 */
  cooldownMs?: number;
  /**
   * Whether an error says the provider is unwell. @default every error except a `NonRetriableError` (a bad request:
   * the caller's fault, not the provider's) and an abort
   */
  isFailure?: (error: unknown) => boolean;
  /** @default Date.now */
  now?: () => number;
}

/**
 * The circuit is open: the provider failed repeatedly, so calls are refused until the cooldown ends. A task that
 * throws it is retried after that time (it is a `RetryAfterError`), without spending its attempts on a provider that
 * is down.
 */
export class CircuitOpenError extends RetryAfterError {
  override name = 'CircuitOpenError';
  constructor(
    readonly provider: string,
    delayMs: number,
  ) {
    super(delayMs, `${provider} is failing; calls are paused for ${Math.ceil(delayMs / 1000)} s (circuit open)`);
  }
}

export type CircuitState = 'closed' | 'open' | 'half-open';

function defaultIsFailure(error: unknown): boolean {
  return !(error instanceof NonRetriableError) && !isAbortReason(error) && !(error instanceof Error && error.name === 'AbortError');
}

/**
 * Guards calls to one external provider. Closed: calls pass, consecutive failures are counted. Open (after
 * `failureThreshold` of them): calls fail at once with `CircuitOpenError`. Half-open (after `cooldownMs`): one trial
 * call passes; its success closes the circuit, its failure opens it again. State is per process.
 */
export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private trial = false;
  private readonly threshold: number;
  private readonly cooldownMs: number;
  private readonly isFailure: (error: unknown) => boolean;
  private readonly now: () => number;

  constructor(
    readonly provider: string,
    options: CircuitBreakerOptions = {},
  ) {
    this.threshold = options.failureThreshold ?? 5;
    this.cooldownMs = options.cooldownMs ?? 30_000;
    if (!Number.isInteger(this.threshold) || this.threshold < 1) throw new TypeError(`failureThreshold must be a whole number >= 1, got ${JSON.stringify(options.failureThreshold)}`);
    if (!Number.isFinite(this.cooldownMs) || this.cooldownMs < 0) throw new TypeError(`cooldownMs must be a number >= 0, got ${JSON.stringify(options.cooldownMs)}`);
    this.isFailure = options.isFailure ?? defaultIsFailure;
    this.now = options.now ?? Date.now;
  }

  get state(): CircuitState {
    if (this.failures < this.threshold) return 'closed';
    return this.now() - this.openedAt >= this.cooldownMs ? 'half-open' : 'open';
  }

  async run<T>(call: () => Promise<T>): Promise<T> {
    const state = this.state;
    if (state === 'open' || (state === 'half-open' && this.trial)) {
      throw new CircuitOpenError(this.provider, Math.max(1, this.openedAt + this.cooldownMs - this.now()));
    }
    const isTrial = state === 'half-open';
    if (isTrial) this.trial = true;
    try {
      const value = await call();
      this.failures = 0;
      return value;
    } catch (error) {
      if (this.isFailure(error)) {
        this.failures = isTrial ? this.threshold : this.failures + 1;
        if (this.failures >= this.threshold) this.openedAt = this.now();
      } else if (isTrial) {
        this.failures = 0; // the provider answered: it is up
      }
      throw error;
    } finally {
      if (isTrial) this.trial = false;
    }
  }
}

sharedIdentity(CircuitOpenError, 'CircuitOpenError');
