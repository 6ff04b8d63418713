import type { DeliveryConfig } from '../config/types';

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
 * `TestRetryConfigFromDeliverySpec` does), so a sink that just failed is never hit again at once.
 *
 * Defaults (exponential, PT0.2S, backoffMax PT30S), without jitter:
 *   0.2s, 0.4s, 0.8s, 1.6s, 3.2s, 6.4s, 12.8s, 25.6s, 30s, 30s, …
 * Linear with PT0.2S: 0.2s, 0.4s, 0.6s, 0.8s, … up to 30s.
 *
 * Jitter (±20%, off unless a `random` is given) spreads retries of many replicas; tests pass a
 * fixed function so the result is deterministic.
 */
export type BackoffPolicy = Pick<DeliveryConfig, 'backoffPolicy' | 'backoffDelayMs' | 'backoffMaxMs'>;

export const JITTER = 0.2;

export function backoffDelay(policy: BackoffPolicy, retry: number, random?: () => number): number {
  const n = Math.max(1, Math.floor(retry));
  const base =
    policy.backoffPolicy === 'linear'
      ? policy.backoffDelayMs * n
      : policy.backoffDelayMs * 2 ** Math.min(n - 1, 52); // 2^52 already exceeds any cap
  const capped = Math.min(base, policy.backoffMaxMs);
  if (!random) return capped;
  const factor = 1 + JITTER * (2 * random() - 1);
  return Math.round(Math.min(capped * factor, policy.backoffMaxMs));
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
