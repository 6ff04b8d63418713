import { STATUS_CODES } from 'node:http';
import { classifyStatus, finalReason } from './status';
import { honoursRetryAfter, parseRetryAfter } from './retry-after';
import { DeliveryError } from '../../errors';

const EXCERPT_CHARS = 512;
/**
 * Raw bytes of a failed answer kept for the dead-letter sink's `knativeerrordata` (Knative reads
 * the same 1024 bytes: `KnativeErrorDataExtensionMaxLength`), as `detail.responseBodyBase64`.
 */
export const RESPONSE_BODY_BYTES = 1024;
/** Bytes of a failed answer kept for the error message and the dead letter. */
export const KEEP_BYTES = Math.max(EXCERPT_CHARS * 4, RESPONSE_BODY_BYTES);
/** Past this we stop reading and let undici close the socket: cheaper than draining a huge answer. */
export const DRAIN_LIMIT_BYTES = 256 * 1024;

/** What the sink answered: the status, its Retry-After, the first KEEP_BYTES of a failure's body. */
export interface Answer {
  status: number;
  retryAfter?: string;
  kept: Buffer;
}

/** A 2xx is delivered: its body is read and dropped, nothing of it kept. */
export function isDelivered(status: number): boolean {
  return classifyStatus(status) === 'delivered';
}

/**
 * The answer's status when delivered; otherwise a DeliveryError classified by Knative's table.
 * `who` starts the message (`sink`, `webhook https://…`).
 */
export function checkAnswer(answer: Answer, who = 'sink'): number {
  const { status } = answer;
  const verdict = classifyStatus(status);
  if (verdict === 'delivered') return status;
  const excerpt = excerptOf(answer.kept);
  const reason = finalReason(status);
  const retryAfterMs = honoursRetryAfter(status) ? parseRetryAfter(answer.retryAfter) : undefined;
  let message = `${who} answered ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd();
  if (reason) message += ` (${reason})`;
  if (excerpt) message += `: ${excerpt}`;
  throw new DeliveryError(message, {
    status,
    retryAfterMs,
    retriable: verdict === 'retriable',
    detail: { status, retryAfterMs, responseBodyBase64: answer.kept.subarray(0, RESPONSE_BODY_BYTES).toString('base64') },
  });
}

function excerptOf(kept: Buffer): string {
  const text = kept.toString('utf8').replace(/\s+/g, ' ').trim();
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS - 1)}…` : text;
}
