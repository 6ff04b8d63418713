/**
 * Knative's answer table (README, "Retries"; knative/eventing `pkg/kncloudevents/retries.go`,
 * `SelectiveRetry`): 2xx delivered; 404, 408, 409, 429 and 5xx retried; every other answer final.
 * 404 is retried because a Knative service answers it while its pod is becoming ready.
 * 1xx/3xx are final too: we do not follow redirects, so the event did not arrive anywhere.
 */
export type AnswerClass = 'delivered' | 'retriable' | 'final';

const RETRIABLE_4XX = new Set([404, 408, 409, 429]);

export function classifyStatus(status: number): AnswerClass {
  if (status >= 200 && status < 300) return 'delivered';
  if (status >= 500 || RETRIABLE_4XX.has(status)) return 'retriable';
  return 'final';
}

/** Why a non-2xx answer is final, for the error message; undefined when there is nothing to add. */
export function finalReason(status: number): string | undefined {
  if (status >= 300 && status < 400) return 'redirects are not followed; point the sink at the final URL';
  if (status < 200) return 'an informational answer is not an acknowledgement';
  return undefined;
}
