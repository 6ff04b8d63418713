/**
 * The one retrier: every loop that waits and tries again (delivery, the replication reconnect,
 * dead-letter and undecodable-change storage, leader polling, replay) uses these pieces with its
 * own policy, instead of a loop and a timer of its own.
 *
 * - `backoffDelay(policy, retry)`: the wait before retry number `retry`, Knative's formula.
 * - `Backoff`: the same sequence as state, for supervision loops that reset after a success.
 * - `sleep(ms, signal)`: the only timer between attempts; rejects when the signal aborts.
 * - `retry(fn, options)`: call `fn` until it resolves, a final error, the retry budget, or abort.
 */
export interface BackoffPolicy {
  /** `linear`: delay × n; `exponential`: delay × 2^(n-1). */
  kind: 'linear' | 'exponential';
  /** The first retry's wait. */
  delayMs: number;
  /** No wait is longer than this (jitter included). */
  maxMs: number;
}

/** ±20 %, off unless a `random` source is given: spreads the retries of many replicas. */
export const JITTER = 0.2;

/**
 * The wait before retry number `retry` (1 = the first retry), per Knative's delivery spec:
 * "linear: backoffDelay * <numberOfRetries>; exponential: backoffDelay * 2^<numberOfRetries>"
 * (knative.dev/docs/eventing/event-delivery), capped by `backoffMax`
 * (knative.dev/docs/eventing/features/delivery-backoff-max).
 *
 * Counting: Knative's dispatcher hands go-retryablehttp's 0-based index to that formula
 * (`pkg/kncloudevents/retries.go` + `event_dispatcher.go`), so its first exponential retry waits
 * exactly `backoffDelay` — the "initial delay" of knative/specs control-plane.md `DeliverySpec` —
 * and we do the same: exponential = backoffDelay * 2^(retry-1). For linear the same index would make
 * the first retry immediate; we count retries from 1 there (as Knative's own
 * `TestRetryConfigFromDeliverySpec` does), so a target that just failed is never hit again at once.
 *
 * Delivery's defaults (exponential, PT0.2S, backoffMax PT30S), without jitter:
 *   0.2s, 0.4s, 0.8s, 1.6s, 3.2s, 6.4s, 12.8s, 25.6s, 30s, 30s, …
 * Linear with PT0.2S: 0.2s, 0.4s, 0.6s, 0.8s, … up to 30s.
 */
export function backoffDelay(policy: BackoffPolicy, retry: number, random?: () => number): number {
  const n = Math.max(1, Math.floor(retry));
  const base =
    policy.kind === 'linear'
      ? policy.delayMs * n
      : policy.delayMs * 2 ** Math.min(n - 1, 52); // 2^52 already exceeds any cap
  const capped = Math.min(base, policy.maxMs);
  if (!random) return capped;
  const factor = 1 + JITTER * (2 * random() - 1);
  return Math.round(Math.min(capped * factor, policy.maxMs));
}

/**
 * The backoff sequence as state: `next()` gives the wait before the next retry, `reset()` starts
 * over (after a connection that worked, say). For loops that supervise something long-lived.
 */
export class Backoff {
  private retries = 0;

  constructor(private readonly policy: BackoffPolicy, private readonly random?: () => number) {}

  next(): number {
    this.retries += 1;
    return backoffDelay(this.policy, this.retries, this.random);
  }

  reset(): void {
    this.retries = 0;
  }
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** A timer that rejects with the signal's reason when it aborts (shutdown). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryFailure {
  error: unknown;
  /** 1 = the first attempt. */
  attempt: number;
  willRetry: boolean;
  /** The wait before the next attempt, when there is one. */
  retryInMs?: number;
}

export interface RetryOptions {
  policy: BackoffPolicy;
  /** Retries after the first attempt; undefined = no limit. */
  retries?: number;
  /** Aborted: no further attempt; the wait in progress ends and `retry` rejects with the reason. */
  signal?: AbortSignal;
  /** Whether an error is worth another attempt; by default the error's own `retriable` flag. */
  retriable?: (error: unknown) => boolean;
  /** The wait before retry `attempt` given the backoff's; e.g. the larger of it and Retry-After. */
  waitMs?: (backoffMs: number, error: unknown, attempt: number) => number;
  /** Called after every failed attempt (logs, metrics); must not throw. */
  onFailure?: (failure: RetryFailure) => void;
  /** Injected by tests. */
  sleep?: Sleep;
  random?: () => number;
}

/**
 * Calls `fn(attempt)` until it resolves. A final error (`retriable` false), or the error of the
 * last allowed attempt, is thrown as it is, with `attempts` set on it when it is an object; an
 * abort rejects with the signal's reason (the caller knows which it was from `signal.aborted`).
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const { signal } = options;
  const wait = options.sleep ?? sleep;
  const retriable = options.retriable ?? ownFlag;
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw signal.reason;
    let error: unknown;
    try {
      return await fn(attempt);
    } catch (err) {
      error = err;
    }
    const budgetLeft = options.retries === undefined || attempt <= options.retries;
    const willRetry = budgetLeft && !signal?.aborted && retriable(error);
    let retryInMs: number | undefined;
    if (willRetry) {
      const backoff = backoffDelay(options.policy, attempt, options.random);
      retryInMs = options.waitMs ? options.waitMs(backoff, error, attempt) : backoff;
    }
    options.onFailure?.({ error, attempt, willRetry, retryInMs });
    if (!willRetry) {
      if (signal?.aborted) throw signal.reason;
      if (typeof error === 'object' && error !== null) Object.assign(error, { attempts: attempt });
      throw error;
    }
    await wait(retryInMs!, signal);
  }
}

/** An error says itself whether to retry (`retriable`, as PgceError and DeliveryError do); anything else is retried. */
function ownFlag(error: unknown): boolean {
  const flag = (error as { retriable?: unknown } | null)?.retriable;
  return typeof flag === 'boolean' ? flag : true;
}
