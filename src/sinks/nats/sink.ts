import type { CloudEvent } from 'cloudevents';
import { connect, headers as natsHeaders, type JetStreamClient, type NatsConnection } from 'nats';
import { DeliveryError, ErrorCodes, PgceError, errorMessage } from '../../errors';
import { logger, scrubSecrets } from '../../logger';
import { Budget, DeadlineExceeded } from '../support/deadline';
import { LazyConnection } from '../support/lazy-connection';
import { fixedDestination, type Template } from '../template';
import type { PlainMessage, Sink } from '../types';
import { classifyNatsError, isNatsAuthError } from './classify';
import { encodeNats, encodePlainNats, type NatsMessage, type NatsMode } from './encode';

export interface NatsSinkOptions {
  /** The `brokers.<name>` key, for messages. */
  brokerName: string;
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
  subject: { text: string; template: Template };
  /** JetStream stream to create when missing, capturing `streamSubjects`. */
  stream?: { name: string; subjects: string[] };
  mode: NatsMode;
  /** Bound on one send, connecting included (config.sink.timeoutMs). */
  timeoutMs: number;
}

interface Live {
  nc: NatsConnection;
  js: JetStreamClient;
}

// A NATS subject: dot-separated non-empty tokens, no whitespace; wildcards cannot be published to.
const PUBLISHABLE_SUBJECT = /^[^\s.*>]+(\.[^\s.*>]+)*$/;

/**
 * JetStream publisher: one connection (nats.js), opened on first use and reused; the client
 * reconnects in the background. Each event is published with `Nats-Msg-Id` = the event id, so a
 * redelivery inside the stream's duplicate window is stored once, and counts as delivered only
 * when the stream's PubAck arrives within `timeoutMs`.
 */
export class NatsSink implements Sink {
  readonly name = 'nats';
  private readonly live: LazyConnection<Live>;
  private readonly log = logger('sinks.nats');

  constructor(private readonly options: NatsSinkOptions) {
    this.live = new LazyConnection<Live>({
      open: () => this.open(),
      dispose: async ({ nc }) => {
        if (!nc.isClosed()) await nc.close();
      },
      closedError: () => new DeliveryError(`nats sink ${this.where()} is closed`, { retriable: true }),
    });
  }

  describe(): string {
    const stream = this.options.stream ? ` (stream ${this.options.stream.name})` : '';
    return `${this.options.servers.map(scrubSecrets).join(',')} subject ${this.options.subject.text}${stream}`;
  }

  async send(event: CloudEvent<unknown>): Promise<void> {
    await this.sendBatch([event]);
  }

  /**
   * Several events published back to back on the one connection (so the stream stores them in
   * order) and their PubAcks awaited together: one round trip instead of one per event
   * (`brokers.<name>.batchSize`). A failure fails the batch, which is retried as a whole; the
   * stream drops the copies it already stored by their Nats-Msg-Id.
   */
  async sendBatch(events: CloudEvent<unknown>[]): Promise<void> {
    if (events.length === 0) return;
    await this.publishAll(events.map((event) => ({ id: event.id, subject: this.subjectOf(event), message: encodeNats(event, this.options.mode) })));
  }

  /**
   * A bare payload (trigger action) to the fixed subject: the body with `Content-Type` and
   * `Nats-Msg-Id` = the message id, stored once per id within the stream's duplicate window.
   */
  async sendMessage(message: PlainMessage): Promise<void> {
    const subject = this.publishable(fixedDestination(this.options.subject.text, `brokers.${this.options.brokerName}.params.subject`));
    await this.publishAll([{ id: message.id, subject, message: encodePlainNats(message) }]);
  }

  /** Publishes back to back, each with `Nats-Msg-Id` = its id, and awaits every PubAck. */
  private async publishAll(messages: { id: string; subject: string; message: NatsMessage }[]): Promise<void> {
    const started = Date.now();
    const { js } = await this.live.get();
    const left = Math.max(1, this.options.timeoutMs - (Date.now() - started));
    const acks = messages.map(({ id, subject, message }) => {
      const h = natsHeaders();
      for (const [name, value] of Object.entries(message.headers)) h.set(name, value);
      return this.published(subject, id, js.publish(subject, message.data, { msgID: id, headers: h, timeout: left }));
    });
    // Every publish settles before the batch does, so no PubAck rejection goes unobserved.
    const results = await Promise.allSettled(acks);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async published(subject: string, id: string, publish: ReturnType<JetStreamClient['publish']>): Promise<void> {
    let ack;
    try {
      ack = await publish;
    } catch (err) {
      const f = classifyNatsError(err);
      throw new DeliveryError(scrubSecrets(`nats ${this.where()} did not store ${subject}: ${f.reason}`), {
        retriable: f.retriable,
        code: f.unreachable ? ErrorCodes.SINK_UNREACHABLE : undefined,
        cause: err,
      });
    }
    if (ack.duplicate) this.log.debug({ subject, id, stream: ack.stream, seq: ack.seq }, 'already stored (duplicate Nats-Msg-Id)');
  }

  /** Connects, checks JetStream, and for a fixed subject that a stream captures it. */
  async check(): Promise<void> {
    let live: Live;
    try {
      live = await this.live.get();
    } catch (err) {
      throw new PgceError(ErrorCodes.SINK_UNREACHABLE, `nats broker ${this.options.brokerName} (${this.describe()}) is not reachable: ${errorMessage(err)}`, {
        retriable: true,
        cause: err,
      });
    }
    const jsm = await live.nc.jetstreamManager({ timeout: this.options.timeoutMs }).catch((err: unknown) => {
      throw new PgceError(ErrorCodes.SINK_CONFIG, `nats broker ${this.options.brokerName}: JetStream is not available: ${errorMessage(err)}`, { cause: err });
    });
    const subject = this.options.subject.text;
    if (subject.includes('{{')) return;
    await jsm.streams.find(subject).catch((err: unknown) => {
      throw new PgceError(ErrorCodes.SINK_CONFIG,
        `nats broker ${this.options.brokerName}: no JetStream stream captures subject ${subject} (${errorMessage(err)}); ` +
        'create one, or set params.stream to have it created', { cause: err });
    });
  }

  async close(): Promise<void> {
    await this.live.close();
  }

  private subjectOf(event: CloudEvent<unknown>): string {
    return this.publishable(this.options.subject.template(event));
  }

  private publishable(subject: string): string {
    if (!PUBLISHABLE_SUBJECT.test(subject)) {
      throw new DeliveryError(`nats subject ${JSON.stringify(subject)} (from ${this.options.subject.text}) is not a publishable subject`, { retriable: false });
    }
    return subject;
  }

  /**
   * A connection (and the stream ensured), within the timeout; nats.js reconnects it in the
   * background, and once it is closed for good the next send opens a new one.
   */
  private async open(): Promise<Live> {
    const o = this.options;
    const budget = new Budget(o.timeoutMs);
    const connecting = connect({
      servers: o.servers,
      user: o.user,
      pass: o.pass,
      token: o.token,
      name: 'pg-cloudevents',
      timeout: o.timeoutMs,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      // nats.js otherwise makes an Error (a stack trace) for every request, in case it fails:
      // a fifth of the CPU per published event. Our errors name the subject and the cause anyway.
      noAsyncTraces: true,
    });
    try {
      const nc = await budget.run(() => connecting);
      try {
        if (o.stream) await budget.run(() => this.ensureStream(nc, o.stream!));
      } catch (err) {
        await nc.close().catch(() => undefined);
        throw err;
      }
      const live: Live = { nc, js: nc.jetstream({ timeout: o.timeoutMs }) };
      void nc.closed().then(() => this.live.drop(live));
      return live;
    } catch (caught) {
      connecting.then((nc) => nc.close(), () => undefined); // a connection that won after the deadline
      const err = caught instanceof DeadlineExceeded
        ? Object.assign(new Error(`no connection within ${o.timeoutMs} ms`), { code: 'CONNECTION_TIMEOUT' })
        : caught;
      const f = classifyNatsError(err);
      const message = scrubSecrets(`nats ${this.where()} unreachable: ${f.reason}`);
      if (isNatsAuthError(err)) throw new DeliveryError(message, { retriable: false, cause: err });
      if (!f.retriable) throw new DeliveryError(message.replace('unreachable', 'refused'), { retriable: false, cause: err });
      throw new DeliveryError(message, { retriable: true, code: ErrorCodes.SINK_UNREACHABLE, cause: err });
    }
  }

  /** Creates the stream when it does not exist; an existing stream is left as it is. */
  private async ensureStream(nc: NatsConnection, stream: { name: string; subjects: string[] }): Promise<void> {
    const jsm = await nc.jetstreamManager({ timeout: this.options.timeoutMs });
    try {
      const info = await jsm.streams.info(stream.name);
      const missing = stream.subjects.filter((s) => !info.config.subjects?.includes(s));
      if (missing.length) this.log.warn({ stream: stream.name, subjects: info.config.subjects, missing }, 'existing stream does not list these subjects; left unchanged');
    } catch (err) {
      if ((err as { api_error?: { err_code?: number } }).api_error?.err_code !== 10059) throw err; // 10059: stream not found
      await jsm.streams.add({ name: stream.name, subjects: stream.subjects }).catch((e: unknown) => {
        if ((e as { api_error?: { err_code?: number } }).api_error?.err_code !== 10058) throw e; // 10058: created meanwhile
      });
      this.log.info({ stream: stream.name, subjects: stream.subjects }, 'created JetStream stream');
    }
  }

  private where(): string {
    return this.options.servers.map(scrubSecrets).join(',');
  }
}
