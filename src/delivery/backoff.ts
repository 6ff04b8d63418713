import type { DeliveryConfig } from '../config/types';
import { backoffDelay as retrierBackoff, type BackoffPolicy } from '../retry';

/**
 * Delivery's backoff settings (`delivery.backoffPolicy`, `backoffDelay`, `backoffMax`: Knative's
 * DeliverySpec) as the retrier's policy; the formula and its sequence are in src/retry.
 */
export type DeliveryBackoff = Pick<DeliveryConfig, 'backoffPolicy' | 'backoffDelayMs' | 'backoffMaxMs'>;

export function deliveryBackoff(policy: DeliveryBackoff): BackoffPolicy {
  return { kind: policy.backoffPolicy, delayMs: policy.backoffDelayMs, maxMs: policy.backoffMaxMs };
}

/** The wait before delivery retry number `retry` (1 = the first), jittered when `random` is given. */
export function backoffDelay(policy: DeliveryBackoff, retry: number, random?: () => number): number {
  return retrierBackoff(deliveryBackoff(policy), retry, random);
}

/**
 * The wait a sink asked for (a DeliveryError's `retryAfterMs`, e.g. HTTP's Retry-After), capped by
 * `retryAfterMaxMs` when set (knative docs "DeliverySpec.RetryAfterMax field"); `PT0S` turns it
 * off, as in Knative.
 */
export function cappedRetryAfter(askedMs: number | undefined, retryAfterMaxMs: number | undefined): number | undefined {
  if (askedMs === undefined) return undefined;
  return retryAfterMaxMs === undefined ? askedMs : Math.min(askedMs, retryAfterMaxMs);
}
