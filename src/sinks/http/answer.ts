import { STATUS_CODES } from 'node:http';
import type { Dispatcher } from 'undici';
import { classifyStatus, finalReason } from '../../delivery/classify';
import { honoursRetryAfter, parseRetryAfter } from '../../delivery/retry-after';
import { DeliveryError } from '../../errors';

const EXCERPT_CHARS = 512;
// Past this we stop reading and let undici close the socket: cheaper than draining a huge answer.
const DRAIN_LIMIT_BYTES = 256 * 1024;

/**
 * Turns the sink's answer into nothing (2xx) or a DeliveryError classified by Knative's table.
 * The body is always consumed, so the keep-alive connection goes back to the pool.
 */
export async function checkAnswer(res: Dispatcher.ResponseData): Promise<void> {
  const verdict = classifyStatus(res.statusCode);
  const excerpt = await readExcerpt(res.body, verdict !== 'delivered');
  if (verdict === 'delivered') return;
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
    detail: { status, retryAfterMs },
  });
}

async function readExcerpt(body: Dispatcher.ResponseData['body'], keep: boolean): Promise<string> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let seen = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    seen += buf.length;
    if (keep && keptBytes < EXCERPT_CHARS * 4) {
      kept.push(buf);
      keptBytes += buf.length;
    }
    if (seen > DRAIN_LIMIT_BYTES) {
      body.destroy();
      break;
    }
  }
  if (!keep) return '';
  const text = Buffer.concat(kept).toString('utf8').replace(/\s+/g, ' ').trim();
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS - 1)}…` : text;
}
