import type { CloudEvent } from 'cloudevents';
import { Pool } from 'undici';
import type { SinkConfig } from '../../config/types';
import { DeliveryError, ErrorCodes, PgceError } from '../../errors';
import { scrubSecrets } from '../../logger';
import type { SendResult, Sink } from '../types';
import { checkAnswer, type Answer } from './answer';
import { describeCause, exchange, unansweredError } from './exchange';
import { encodeBatch, encodeEvent } from './encode';
import { trustedCAs } from './tls';
import { TokenFile, type TokenFileOptions } from './token';

// Idle sockets are kept this long; Knative's queue-proxy keeps them open longer than that.
const KEEP_ALIVE_MS = 30_000;

/**
 * The Knative sink (`K_SINK`): one POST per event, CloudEvents HTTP binding, binary mode unless an
 * attribute cannot travel as a header (see encode.ts) or `mode: structured` is set; in `mode:
 * batch`, `sendBatch` POSTs several events as one application/cloudevents-batch+json array.
 * Connections are pooled and kept alive (an undici Pool for the one origin, no pipelining), so a steady stream reuses
 * one socket.
 */
export class HttpSink implements Sink {
  readonly name = 'http';
  private readonly url: URL;
  private readonly pool: Pool;
  private readonly path: string;
  private readonly token: TokenFile;
  private readonly basicAuth?: string;
  private closing?: Promise<void>;

  constructor(private readonly config: SinkConfig, options: { tokenFile?: TokenFileOptions } = {}) {
    this.url = parseSinkUrl(config.url);
    this.basicAuth = basicAuthOf(this.url);
    this.url.username = '';
    this.url.password = '';
    this.token = new TokenFile(config.oidcTokenPath, options.tokenFile);
    this.path = `${this.url.pathname}${this.url.search}`;
    this.pool = new Pool(this.url.origin, {
      pipelining: 1, // one request at a time per connection; 0 would turn keep-alive off
      keepAliveTimeout: KEEP_ALIVE_MS,
      headersTimeout: config.timeoutMs,
      bodyTimeout: config.timeoutMs,
      connect: this.url.protocol === 'https:' ? { ca: trustedCAs(config.caCerts, config.caCertsDir) } : {},
    });
  }

  describe(): string {
    return this.url.toString();
  }

  async send(event: CloudEvent<unknown>): Promise<SendResult> {
    // A single event in batch mode (e.g. a replay) goes as binary, the default single-event mode.
    const encoded = encodeEvent(event, this.config.mode === 'structured' ? 'structured' : 'binary');
    this.authorize(encoded.headers, await this.token.read());
    return { status: checkAnswer(await this.call('POST', encoded.headers, encoded.body)) };
  }

  /**
   * All `events` in one request (HTTP binding §3.3), accepted or refused together: the answer is
   * classified as for one event, so a retriable failure retries the whole batch. One attempt.
   */
  async sendBatch(events: CloudEvent<unknown>[]): Promise<SendResult> {
    if (events.length === 0) return {};
    const encoded = encodeBatch(events);
    this.authorize(encoded.headers, await this.token.read());
    return { status: checkAnswer(await this.call('POST', encoded.headers, encoded.body)) };
  }

  /** Any HTTP answer proves the sink is there; only the connection itself can fail the check. */
  async check(): Promise<void> {
    try {
      const headers: Record<string, string> = {};
      this.authorize(headers, await this.token.read());
      await this.call('HEAD', headers);
    } catch (err) {
      const cause = err instanceof DeliveryError && err.cause ? err.cause : err;
      const what = err instanceof DeliveryError && err.code !== ErrorCodes.SINK_UNREACHABLE ? err.message : describeCause(cause);
      throw new PgceError(ErrorCodes.SINK_UNREACHABLE, `K_SINK ${this.describe()} is not reachable: ${what}`, {
        retriable: true,
        cause: err,
      });
    }
  }

  /** Waits for requests in flight (each bounded by its timeout); idempotent, as every sink's close. */
  close(): Promise<void> {
    this.closing ??= this.pool.close();
    return this.closing;
  }

  /** The OIDC token when Knative projected one, else the K_SINK URL's user:password. */
  private authorize(headers: Record<string, string>, token: string | undefined): void {
    if (token) headers.authorization = `Bearer ${token}`;
    else if (this.basicAuth) headers.authorization = this.basicAuth;
  }

  /** One request with the per-request timeout over headers and body; failures as DeliveryError. */
  private async call(method: 'POST' | 'HEAD', headers: Record<string, string>, body?: string | Uint8Array): Promise<Answer> {
    try {
      return await exchange(this.pool, { path: this.path, method, headers, body, timeoutMs: this.config.timeoutMs });
    } catch (err) {
      throw this.networkError(err);
    }
  }

  private networkError(err: unknown): DeliveryError {
    return unansweredError(err, `sink ${this.describe()}`, this.config.timeoutMs);
  }
}

function parseSinkUrl(raw: string | undefined): URL {
  if (!raw) throw new PgceError(ErrorCodes.SINK_CONFIG, 'K_SINK is not set: the http handler needs a sink URL (K_SINK or sink.url)');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PgceError(ErrorCodes.SINK_CONFIG, `K_SINK ${JSON.stringify(scrubSecrets(raw))} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new PgceError(ErrorCodes.SINK_CONFIG, `K_SINK must be an http or https URL, got ${url.protocol}`);
  }
  return url;
}

function basicAuthOf(url: URL): string | undefined {
  if (!url.username && !url.password) return undefined;
  const pair = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  return `Basic ${Buffer.from(pair).toString('base64')}`;
}
