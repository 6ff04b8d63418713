/**
 * `Retry-After` (RFC 9110 §10.2.3): either delta-seconds (`120`) or an HTTP-date
 * (`Fri, 31 Dec 1999 23:59:59 GMT`). Knative honours it on 429 and 503 only. The sink puts the
 * wait on its DeliveryError (`retryAfterMs`); the delivery layer caps it with `retryAfterMax`
 * (src/delivery/backoff.ts) and never reads HTTP itself.
 */
const DELTA_SECONDS = /^\d+$/;
// IMF-fixdate, and the two obsolete forms RFC 9110 §5.6.7 says recipients must accept; Date.parse
// reads all three, we only make sure it is not handed arbitrary text.
const HTTP_DATE = /^[A-Za-z]{3,9}, ?[\d]{1,2}[ -][A-Za-z]{3}[ -]\d{2,4} \d{2}:\d{2}:\d{2} GMT$|^[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

/** Statuses on which a Retry-After is honoured. */
export function honoursRetryAfter(status: number): boolean {
  return status === 429 || status === 503;
}

/** Milliseconds to wait, ≥ 0; undefined for a missing or malformed value. `now` for tests. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (DELTA_SECONDS.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : undefined;
  }
  if (!HTTP_DATE.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
