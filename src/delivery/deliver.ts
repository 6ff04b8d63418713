import type { CloudEvent } from 'cloudevents';
import type { DeliveryConfig } from '../config/types';
import { DeliveryError, ErrorCodes, PgceError, errorMessage, isRetriable } from '../errors';
import type { SendResult, Sink } from '../sinks/types';
import { retry, type Sleep } from '../retry';
import { backoffDelay, cappedRetryAfter, deliveryBackoff } from './backoff';

export interface AttemptFailure {
  error: DeliveryError;
  /** 1 = the first attempt. */
  attempt: number;
  willRetry: boolean;
  /** The wait before the next attempt, when there is one. */
  retryInMs?: number;
}

export type { Sleep };

export interface DeliverOptions {
  /** Aborted on shutdown: stop waiting, throw `DeliveryAbortedError`, acknowledge nothing. */
  signal?: AbortSignal;
  onAttemptFailed?: (info: AttemptFailure) => void;
  /** Timer used between attempts; injected by tests. Must reject when `signal` aborts. */
  sleep?: Sleep;
  /** Jitter source for the backoff (see backoff.ts); none by default. */
  random?: () => number;
}

/** The last attempt's error, with how many attempts were made. */
export type DeliveryFailure = DeliveryError & { attempts: number };

/** Thrown when the signal aborted: the event was NOT delivered and must not be acknowledged. */
export class DeliveryAbortedError extends PgceError {
  readonly attempts: number;
  constructor(attempts: number, lastError?: DeliveryError) {
    super(ErrorCodes.DELIVERY_ABORTED, 'delivery abandoned: shutting down before the sink accepted the event', {
      retriable: true,
      cause: lastError,
    });
    this.name = 'AbortError';
    this.attempts = attempts;
  }
}

/**
 * Sends `event` until the sink accepts it, following Knative's delivery semantics: retriable
 * failures are retried after `max(backoff, Retry-After)` (Knative uses the larger of the two);
 * `policy.retry` retries at most (undefined = forever; nothing is dropped); a final failure or the
 * last retry's failure is thrown (a `DeliveryFailure`) for the caller to dead-letter. Resolves
 * with the accepting attempt's SendResult (a workflow run's result). The loop is the one
 * retrier's (src/retry).
 */
export async function deliverWithRetry(
  sink: Sink,
  event: CloudEvent<unknown>,
  policy: DeliveryConfig,
  opts: DeliverOptions = {},
): Promise<{ attempts: number; result?: SendResult }> {
  const { signal } = opts;
  let attempts = 0;
  let result: SendResult | undefined;
  let lastError: DeliveryError | undefined;
  try {
    await retry(async (attempt) => {
      attempts = attempt;
      try {
        result = (await sink.send(event)) ?? undefined;
      } catch (err) {
        throw (lastError = asDeliveryError(err));
      }
    }, {
      policy: deliveryBackoff(policy),
      retries: policy.retry,
      signal,
      sleep: opts.sleep,
      random: opts.random,
      waitMs: (backoff, error) => atLeastRetryAfter(backoff, error as DeliveryError, policy),
      onFailure: (f) => opts.onAttemptFailed?.({ error: f.error as DeliveryError, attempt: f.attempt, willRetry: f.willRetry, retryInMs: f.retryInMs }),
    });
    return { attempts, ...(result !== undefined && { result }) };
  } catch (err) {
    if (signal?.aborted) throw new DeliveryAbortedError(attempts, lastError);
    throw err as DeliveryFailure;
  }
}

/** The wait after failed attempt number `attempt` (= before retry number `attempt`). */
export function waitBefore(
  policy: DeliveryConfig,
  attempt: number,
  error: DeliveryError,
  random?: () => number,
): number {
  return atLeastRetryAfter(backoffDelay(policy, attempt, random), error, policy);
}

/** Knative waits the larger of its backoff and the sink's (capped) Retry-After. */
function atLeastRetryAfter(backoffMs: number, error: DeliveryError, policy: DeliveryConfig): number {
  return Math.max(backoffMs, cappedRetryAfter(error.retryAfterMs, policy.retryAfterMaxMs) ?? 0);
}

/** A module handler may throw anything; a plain Error is retriable, as kafkajs treats unknowns. */
function asDeliveryError(err: unknown): DeliveryError {
  if (err instanceof DeliveryError) return err;
  const code = err instanceof PgceError ? err.code : undefined;
  return new DeliveryError(errorMessage(err), { retriable: isRetriable(err), cause: err, code });
}
