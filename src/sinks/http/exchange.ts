import { errors as undiciErrors, type Dispatcher } from 'undici';
import { DeliveryError, ErrorCodes, errorMessage, type ErrorCode } from '../../errors';
import { scrubSecrets } from '../../logger';
import { DRAIN_LIMIT_BYTES, isDelivered, KEEP_BYTES, type Answer } from './answer';

export type ExchangeMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface ExchangeRequest {
  /** The request target (path and query) on the dispatcher's origin. */
  path: string;
  /** Needed with a dispatcher that serves several origins (an Agent); a Pool has its own. */
  origin?: string;
  method: ExchangeMethod;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  timeoutMs: number;
  /**
   * Keep up to this many bytes of a 2xx answer's body too (a workflow run's result); default 0:
   * a delivered answer's body is read and dropped.
   */
  keepDeliveredBytes?: number;
}

/** The request did not complete (headers and body) within its time. */
export class ExchangeTimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/** Whether a failed exchange ran out of time (ours, or undici's headers/body timeouts). */
export function isExchangeTimeout(err: unknown): boolean {
  return err instanceof ExchangeTimeoutError || err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError;
}

/** `connect ECONNREFUSED 127.0.0.1:9` rather than undici's generic "fetch failed"-style text. */
export function describeCause(err: unknown): string {
  const code = (err as { code?: string }).code;
  const cause = (err as { cause?: unknown }).cause;
  const text = errorMessage(err);
  const inner = cause ? `; ${errorMessage(cause)}` : '';
  return scrubSecrets(code && !text.includes(code) ? `${code}: ${text}${inner}` : `${text}${inner}`);
}

/**
 * A request that got no answer, as the retriable DeliveryError every HTTP destination throws:
 * `who` names the destination (never with secrets), `timeoutMs` the bound it ran under.
 */
export function unansweredError(err: unknown, who: string, timeoutMs: number, timeoutCode?: ErrorCode): DeliveryError {
  if (isExchangeTimeout(err)) {
    return new DeliveryError(`${who} did not answer within ${timeoutMs} ms`, { retriable: true, cause: err, code: timeoutCode });
  }
  return new DeliveryError(scrubSecrets(`${who} unreachable: ${describeCause(err)}`), {
    retriable: true,
    code: ErrorCodes.SINK_UNREACHABLE,
    cause: err,
  });
}

/**
 * One request and its answer through undici's dispatcher handler API, the layer its `request()`
 * is built on. Going direct saves what `request()` adds per call and a sink never needs: a
 * Readable for the answer's body, its async iterator, and an AbortSignal with listeners (together
 * about a fifth of the CPU of a binary-mode event). The whole exchange has one deadline; a 2xx
 * body is read and dropped, a failure's first KEEP_BYTES are kept, and reading stops past
 * DRAIN_LIMIT_BYTES (undici then closes the socket instead of draining it).
 */
export function exchange(dispatcher: Dispatcher, req: ExchangeRequest): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const handler = new AnswerHandler(resolve, reject, req.timeoutMs, req.keepDeliveredBytes ?? 0);
    dispatcher.dispatch(
      { origin: req.origin, path: req.path, method: req.method, headers: req.headers, body: req.body },
      handler,
    );
  });
}

class AnswerHandler implements Dispatcher.DispatchHandlers {
  private abort?: (err?: Error) => void;
  private readonly timer: NodeJS.Timeout;
  private settled = false;
  private status = 0;
  private retryAfter?: string;
  private keep = false;
  /** How much of the body to keep: a failure's KEEP_BYTES, or keepDeliveredBytes of a 2xx. */
  private keepLimit = KEEP_BYTES;
  private kept: Buffer[] = [];
  private keptBytes = 0;
  private seen = 0;
  /** Reading was stopped on purpose (too long an answer): the status stands. */
  private truncated = false;
  private timedOut?: ExchangeTimeoutError;

  constructor(
    private readonly resolve: (a: Answer) => void,
    private readonly reject: (err: Error) => void,
    timeoutMs: number,
    private readonly keepDeliveredBytes: number,
  ) {
    this.timer = setTimeout(() => this.timeout(new ExchangeTimeoutError(timeoutMs)), timeoutMs);
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    // Timed out while waiting for a connection: never send it now.
    if (this.timedOut) abort(this.timedOut);
  }

  onHeaders(status: number, rawHeaders: Buffer[] | string[] | null): boolean {
    this.status = status;
    const delivered = isDelivered(status);
    this.keep = !delivered || this.keepDeliveredBytes > 0;
    this.keepLimit = delivered ? this.keepDeliveredBytes : KEEP_BYTES;
    if (this.keep && rawHeaders) {
      for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
        if (rawHeaders[i].toString().toLowerCase() === 'retry-after') this.retryAfter = rawHeaders[i + 1].toString();
      }
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.seen += chunk.length;
    if (this.keep && this.keptBytes < this.keepLimit) {
      this.kept.push(chunk);
      this.keptBytes += chunk.length;
    }
    if (this.seen > DRAIN_LIMIT_BYTES && !this.truncated) {
      this.truncated = true;
      this.finish();
      this.abort?.(new Error('answer body too long; stopped reading'));
    }
    return true;
  }

  onComplete(): void {
    this.finish();
  }

  onError(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.reject(err);
  }

  onUpgrade(): void {
    // Not asked for (no Upgrade header is sent).
  }

  private finish(): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.resolve({ status: this.status, retryAfter: this.retryAfter, kept: this.kept.length === 1 ? this.kept[0] : Buffer.concat(this.kept) });
  }

  private timeout(err: ExchangeTimeoutError): void {
    if (this.settled) return;
    this.settled = true;
    this.timedOut = err;
    this.reject(err);
    this.abort?.(err);
  }
}
