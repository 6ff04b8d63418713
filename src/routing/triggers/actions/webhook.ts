/**
 * `webhook`: one HTTP request per change (README, "Triggers"). The answer is classified as the
 * Knative sink's (src/sinks/http: 2xx delivered; 404, 408, 409, 429 and 5xx retried, Retry-After
 * honoured on 429 and 503; every other answer final), and an unanswered request is retried.
 *
 * What is sent: the bare payload (./message.ts) with `Content-Type`, or with `format: cloudevent`
 * the derived CloudEvent in the HTTP binding's binary mode (structured when an attribute cannot be
 * a header). `GET` sends no body. Every request carries `Idempotency-Key`: the action's delivery
 * event id, the same on every retry and redelivery of the change.
 */
import type { CloudEvent } from 'cloudevents';
import { Agent } from 'undici';
import type { WebhookActionConfig, WebhookMethod } from '../../../config/types';
import { DeliveryError, ErrorCodes } from '../../../errors';
import { isHttpUrl } from '../../../config/schema';
import { parseJsonLossless } from '../../../events/json-text';
import { checkAnswer } from '../../../sinks/http/answer';
import { encodeEvent } from '../../../sinks/http/encode';
import { exchange, unansweredError } from '../../../sinks/http/exchange';
import { trustedCAs } from '../../../sinks/http/tls';
import { Budget, DeadlineExceeded } from '../../../sinks/support/deadline';
import type { SendResult } from '../../../sinks/types';
import { checkWebhookUrl, type AllowList } from '../allow';
import { derivedEvent } from '../derived';
import { compileDynamic, type DynamicText } from '../dynamic';
import type { ActionKind, ActionTarget } from './contract';
import { encodePayload } from './message';
import { actionTimeoutMs, parseSendingOptions, SENDING_OPTIONS, sendingType, unknownKeys } from './options';

export const WEBHOOK_METHODS: readonly WebhookMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
/** The header that carries the action's delivery event id. */
export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** The largest answer body kept as a workflow task's result (a longer one counts as none). */
export const ANSWER_BYTES = 64 * 1024;
/** Idle sockets are kept this long, as the sink's. */
const KEEP_ALIVE_MS = 30_000;
/** RFC 9110 token: what a header name may be. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Hop-by-hop and framing headers undici sets itself (or refuses). */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'expect', 'te', 'trailer']);
/** A header value may not hold these (a header or request split). */
const BAD_HEADER_VALUE = /[\r\n\0]/;

const SETTINGS = ['url', 'method', 'headers'];

export const webhookAction: ActionKind<WebhookActionConfig> = {
  key: 'webhook',
  usage: '{ webhook: { url, method?, headers? } }',

  parse(raw, where, context, problems) {
    const before = problems.length;
    unknownKeys(raw, 'webhook', SENDING_OPTIONS, where, problems);
    const options = parseSendingOptions(raw, where, problems);
    const at = `${where}.webhook`;
    const spec = raw.webhook;
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
      problems.push(`${at}: must be an object { url, method?, headers? }`);
      return undefined;
    }
    const record = spec as Record<string, unknown>;
    for (const key of Object.keys(record)) if (!SETTINGS.includes(key)) problems.push(`${at}.${key}: unknown setting (${SETTINGS.join(', ')})`);

    const { url } = record;
    if (typeof url !== 'string' || url.trim() === '') problems.push(`${at}.url: is required: an absolute http:// or https:// URL`);
    else checkUrl(url, `${at}.url`, context, problems);

    const method = record.method ?? 'POST';
    if (typeof method !== 'string' || !(WEBHOOK_METHODS as readonly string[]).includes(method)) {
      problems.push(`${at}.method: must be one of ${WEBHOOK_METHODS.join(', ')}, got ${JSON.stringify(method)}`);
    } else if (method === 'GET') {
      // A GET has no body (RFC 9110 §9.3.1): a payload would be rendered and never sent.
      if (raw.payload !== undefined) problems.push(`${where}.payload: a GET request sends no body; use POST (or remove the payload)`);
      if (raw.format !== undefined) problems.push(`${where}.format: a GET request sends no body, so no CloudEvent; use POST`);
    }

    const headers: Record<string, string> = {};
    if (record.headers !== undefined) {
      if (typeof record.headers !== 'object' || record.headers === null || Array.isArray(record.headers)) {
        problems.push(`${at}.headers: must be an object of header name → value`);
      } else {
        for (const [name, value] of Object.entries(record.headers)) {
          const h = `${at}.headers[${JSON.stringify(name)}]`;
          if (!HEADER_NAME.test(name)) problems.push(`${h}: not a valid header name`);
          else if (RESERVED_HEADERS.has(name.toLowerCase())) problems.push(`${h}: set by the HTTP client itself; remove it`);
          else if (typeof value !== 'string') problems.push(`${h}: must be a string`);
          else if (BAD_HEADER_VALUE.test(value)) problems.push(`${h}: a header value may not hold a line break`);
          else {
            compileDynamic(value, h, context, problems);
            headers[name] = value;
          }
        }
      }
    }
    if (problems.length > before) return undefined;
    return { webhook: { url: url as string, method: method as WebhookMethod, headers }, ...options };
  },

  type: (action, rule, typePrefix) => sendingType(action, rule, typePrefix),

  target(action, runtime) {
    const { config, where } = runtime;
    return new WebhookTarget(action, {
      where,
      timeoutMs: actionTimeoutMs(action, config.limits?.maxActionTimeoutMs, config.delivery.timeoutMs),
      allow: config.allow,
      trusted: runtime.trusted,
      ca: trustedCAs(config.sink.caCerts, config.sink.caCertsDir),
      keepAnswer: runtime.keepAnswer ?? false,
    });
  },
};

/**
 * A URL as written: a static one must be an absolute http(s) URL without credentials and pass the
 * allow-list now; one with dynamic values is checked again, resolved, when it is sent.
 */
function checkUrl(url: string, where: string, context: { allow?: AllowList; trusted: boolean }, problems: string[]): void {
  const before = problems.length;
  const dynamic = compileDynamic(url, where, context, problems);
  if (problems.length > before) return;
  if (dynamic.references.length > 0) {
    if (!context.trusted && context.allow?.webhookUrls === undefined) {
      problems.push(`${where}: a rule from the database or an admin API may call a webhook only when allow.webhookUrls lists its URL; add a pattern matching the whole URL`);
    }
    return;
  }
  if (!isHttpUrl(url)) {
    problems.push(`${where}: must be an absolute http:// or https:// URL`);
    return;
  }
  const parsed = new URL(url);
  if (parsed.username !== '' || parsed.password !== '') {
    problems.push(`${where}: has credentials (user:password@) in it; send them in a header (Authorization), from a dynamic value`);
    return;
  }
  const refused = checkWebhookUrl(url, context.allow, context.trusted, where);
  if (refused) problems.push(...refused.problems);
}

interface WebhookTargetOptions {
  where: string;
  timeoutMs: number;
  allow?: AllowList;
  trusted: boolean;
  ca: string[];
  /** Parse a 2xx answer's body into SendResult.body (a workflow task's result). */
  keepAnswer: boolean;
}

class WebhookTarget implements ActionTarget {
  private readonly agent: Agent;
  private readonly url: DynamicText;
  private readonly headers: [string, DynamicText][];
  private readonly method: WebhookMethod;

  constructor(private readonly action: WebhookActionConfig, private readonly options: WebhookTargetOptions) {
    // Checked when the rule was loaded: compiling again cannot find a problem.
    const ignored: string[] = [];
    const context = { allow: options.allow, trusted: options.trusted };
    this.url = compileDynamic(action.webhook.url, `${options.where}.webhook.url`, context, ignored);
    this.headers = Object.entries(action.webhook.headers).map(([name, value]) => [
      name.toLowerCase(),
      compileDynamic(value, `${options.where}.webhook.headers[${JSON.stringify(name)}]`, context, ignored),
    ]);
    this.method = action.webhook.method;
    this.agent = new Agent({
      keepAliveTimeout: KEEP_ALIVE_MS,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connect: { ca: options.ca },
    });
  }

  describe(): string {
    return `${this.method} ${displayUrl(this.url.text)}`;
  }

  async send(payload: unknown, delivery: CloudEvent<unknown>): Promise<SendResult> {
    const { timeoutMs, where } = this.options;
    const budget = new Budget(timeoutMs);
    // Dynamic values are read within the same time as the request.
    const { url, headers } = await budget.run(() => this.resolve()).catch((err: unknown) => {
      if (err instanceof DeadlineExceeded) throw this.timeoutError(err);
      throw err;
    });
    const target = this.url.references.length > 0 ? this.checkResolvedUrl(url) : new URL(url);
    const who = `webhook ${this.describe()}`;

    let body: string | Uint8Array | undefined;
    if (this.action.format === 'cloudevent') {
      const encoded = encodeEvent(derivedEvent(delivery, payload), 'binary');
      for (const name of Object.keys(headers)) if (name === 'content-type' || name.startsWith('ce-')) delete headers[name];
      Object.assign(headers, encoded.headers);
      body = encoded.body;
    } else if (this.method !== 'GET') {
      const encoded = encodePayload(payload);
      headers['content-type'] ??= encoded.contentType;
      body = encoded.body;
    }
    headers[IDEMPOTENCY_HEADER] ??= delivery.id;

    let answer;
    try {
      answer = await exchange(this.agent, {
        origin: target.origin,
        path: `${target.pathname}${target.search}`,
        method: this.method,
        headers,
        body,
        timeoutMs: budget.left(),
        ...(this.options.keepAnswer && { keepDeliveredBytes: ANSWER_BYTES }),
      });
    } catch (err) {
      throw unansweredError(err, who, timeoutMs, ErrorCodes.ACTION_TIMEOUT);
    }
    const status = checkAnswer(answer, who);
    if (!this.options.keepAnswer) return { status };
    const result = answerObject(answer.kept);
    return { status, ...(result !== undefined && { body: result }) };
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  private async resolve(): Promise<{ url: string; headers: Record<string, string> }> {
    const [url, ...values] = await Promise.all([this.url.resolve(), ...this.headers.map(([, v]) => v.resolve())]);
    const headers: Record<string, string> = {};
    this.headers.forEach(([name, value], i) => {
      if (BAD_HEADER_VALUE.test(values[i])) {
        // Named by its reference, never by what it holds.
        throw new DeliveryError(`${this.options.where}.webhook.headers[${JSON.stringify(name)}]: ${JSON.stringify(value.text)} resolved to a value with a line break, which a header cannot hold`, {
          retriable: false,
          code: ErrorCodes.DYNAMIC_VALUE,
        });
      }
      headers[name] = values[i];
    });
    return { url, headers };
  }

  /**
   * A URL with dynamic values, resolved: checked as a static one is at load, a refusal final. The
   * message shows the URL as written, never resolved (a dynamic value may be a secret).
   */
  private checkResolvedUrl(url: string): URL {
    const where = `${this.options.where}.webhook.url`;
    const refuse = (why: string) =>
      new DeliveryError(`${where}: ${JSON.stringify(this.url.text)}, resolved, ${why}`, { retriable: false, code: ErrorCodes.URL_NOT_ALLOWED });
    if (!isHttpUrl(url)) throw refuse('is not an absolute http:// or https:// URL');
    const parsed = new URL(url);
    if (parsed.username !== '' || parsed.password !== '') throw refuse('has credentials (user:password@) in it; send them in a header');
    if (checkWebhookUrl(url, this.options.allow, this.options.trusted) !== undefined) {
      throw refuse(
        'is not allowed by allow.webhookUrls: it must match one pattern in full, and may point at a loopback, ' +
          'link-local or cloud-metadata address only when a pattern names that host literally',
      );
    }
    return parsed;
  }

  private timeoutError(cause: unknown): DeliveryError {
    return new DeliveryError(`webhook ${this.describe()} did not complete within ${this.options.timeoutMs} ms (reading its dynamic values)`, {
      retriable: true,
      code: ErrorCodes.ACTION_TIMEOUT,
      cause,
    });
  }
}

/** The answer body, when it is a JSON object (exact numbers kept); anything else, or a body past ANSWER_BYTES, is none. */
function answerObject(kept: Buffer): Record<string, unknown> | undefined {
  if (kept.length === 0 || kept.length >= ANSWER_BYTES) return undefined;
  try {
    const value = parseJsonLossless(kept.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Scheme, host and path of a URL as written: no query (it may carry a token). */
function displayUrl(text: string): string {
  return text.replace(/\?.*$/, '?…');
}
