import { STATUS_CODES } from 'node:http';
import type { Dispatcher } from 'undici';
import { classifyStatus, finalReason } from '../../delivery/classify';
import { honoursRetryAfter, parseRetryAfter } from '../../delivery/retry-after';
import { DeliveryError } from '../../errors';

const EXCERPT_CHARS = 512;
/**
 * Raw bytes of a failed answer kept for the dead-letter sink's `knativeerrordata` (Knative reads
 * the same 1024 bytes: `KnativeErrorDataExtensionMaxLength`), as `detail.responseBodyBase64`.
 */
export const RESPONSE_BODY_BYTES = 1024;
// Past this we stop reading and let undici close the socket: cheaper than draining a huge answer.
const DRAIN_LIMIT_BYTES = 256 * 1024;

/**
 * Turns the sink's answer into its status (2xx) or a DeliveryError classified by Knative's table.
 * The body is always consumed, so the keep-alive connection goes back to the pool.
 */
export async function checkAnswer(res: Dispatcher.ResponseData): Promise<number> {
  const verdict = classifyStatus(res.statusCode);
  const kept = await readKept(res.body, verdict !== 'delivered');
  if (verdict === 'delivered') return res.statusCode;
  const excerpt = excerptOf(kept);
  const status = res.statusCode;
  const reason = finalReason(status);
  const retryAfterMs = honoursRetryAfter(status) ? parseRetryAfter(res.headers['retry-after']) : undefined;
  let message = `sink answered ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd();
  if (reason) message += ` (${reason})`;
  if (excerpt) message += `: ${excerpt}`;
  throw new DeliveryError(message, {
    status,
    retryAfterMs,
    retriable: verdict === 'retriable',
    detail: { status, retryAfterMs, responseBodyBase64: kept.subarray(0, RESPONSE_BODY_BYTES).toString('base64') },
  });
}

const KEEP_BYTES = Math.max(EXCERPT_CHARS * 4, RESPONSE_BODY_BYTES);

/** The answer's first bytes when `keep`; the rest is read and dropped (up to DRAIN_LIMIT_BYTES). */
async function readKept(body: Dispatcher.ResponseData['body'], keep: boolean): Promise<Buffer> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let seen = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    seen += buf.length;
    if (keep && keptBytes < KEEP_BYTES) {
      kept.push(buf);
      keptBytes += buf.length;
    }
    if (seen > DRAIN_LIMIT_BYTES) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(kept);
}

function excerptOf(kept: Buffer): string {
  const text = kept.toString('utf8').replace(/\s+/g, ' ').trim();
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS - 1)}…` : text;
}
