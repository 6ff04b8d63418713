import type { CloudEvent } from 'cloudevents';
import Redis, { type RedisOptions } from 'ioredis';
import { DeliveryError, ErrorCodes, PgceError, errorMessage } from '../../errors';
import { logger, scrubSecrets } from '../../logger';
import { Budget, DeadlineExceeded, withDeadline } from '../support/deadline';
import { LazyConnection } from '../support/lazy-connection';
import { fixedDestination, type Template } from '../template';
import type { PlainMessage, SendResult, Sink } from '../types';
import { classifyRedisError, isAuthError } from './classify';
import { structuredJson } from '../../events/structured';

export interface RedisConnection {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
}

export interface RedisSinkOptions {
  /** The `brokers.<name>` key, for messages. */
  brokerName: string;
  connection: RedisConnection;
  destination: { kind: 'channel' | 'stream'; text: string; template: Template; maxlen?: number };
  /** Bound on one send, connection wait included (config.sink.timeoutMs). */
  timeoutMs: number;
}

/**
 * Field names of a stream entry written by XADD: `id` (the CloudEvent id, so consumers can
 * de-duplicate redeliveries without parsing) and `event` (the structured-mode JSON event).
 */
export const STREAM_FIELDS = { id: 'id', event: 'event' } as const;

/**
 * Field names of a stream entry for a bare payload (a trigger action's, `sendMessage`): `id`,
 * `content-type` and `data` (the body exactly). On a channel the body alone is published.
 */
export const BARE_STREAM_FIELDS = { id: 'id', contentType: 'content-type', data: 'data' } as const;

/** One entry to write: PUBLISH `payload` to `key`, or XADD `fields` to `key`. */
interface Entry {
  key: string;
  payload: string | Buffer;
  fields: (string | Buffer)[];
}

/**
 * One Redis connection (ioredis), opened on first use and reused. The client reconnects in the
 * background; a send never waits longer than `timeoutMs` and never queues while disconnected
 * (`enableOfflineQueue: false`), so a down server fails fast and retriably instead of replaying
 * stale commands later. Confirmation is the server's reply: PUBLISH answers the number of
 * subscribers that received the message (0 is accepted: Pub/Sub is fire-and-forget, see the
 * README), XADD answers the new entry's id.
 */
export class RedisSink implements Sink {
  readonly name = 'redis';
  /** ioredis reconnects by itself: the client is made once, on first use, and kept until close. */
  private readonly client: LazyConnection<Redis>;
  private lastError?: Error;
  private warnedNoReceivers = false;
  private readonly log = logger('sinks.redis');

  constructor(private readonly options: RedisSinkOptions) {
    this.client = new LazyConnection<Redis>({
      open: async () => this.open(),
      dispose: async (client) => {
        if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
        else client.disconnect();
      },
      closedError: () => new DeliveryError(`redis sink ${this.where()} is closed`, { retriable: true }),
    });
  }

  describe(): string {
    const c = this.options.connection;
    const d = this.options.destination;
    return `${c.tls ? 'rediss' : 'redis'}://${c.host}:${c.port}/${c.db} ${d.kind} ${d.text}`;
  }

  async send(event: CloudEvent<unknown>): Promise<SendResult | void> {
    return this.sendBatch([event]);
  }

  /**
   * Events in one pipeline (one write, one round trip; `brokers.<name>.batchSize`, 1 for `send`),
   * applied in order on the one connection. Any failed command fails the batch, which is then
   * retried as a whole: entries already added are added again, which stream consumers dedupe by
   * the `id` field (delivery is at least once).
   */
  async sendBatch(events: CloudEvent<unknown>[]): Promise<SendResult | void> {
    if (events.length === 0) return;
    await this.write(events.map((event) => {
      const payload = structuredJson(event);
      return { key: this.destinationOf(event), payload, fields: [STREAM_FIELDS.id, event.id, STREAM_FIELDS.event, payload] };
    }));
  }

  /**
   * A bare payload (trigger action) to the fixed channel or stream: PUBLISH the body alone, or
   * XADD the fields `id`, `content-type`, `data` (BARE_STREAM_FIELDS). Redis has no message key.
   */
  async sendMessage(message: PlainMessage): Promise<void> {
    const { kind, text } = this.options.destination;
    const key = fixedDestination(text, `brokers.${this.options.brokerName}.params.${kind}`);
    const f = BARE_STREAM_FIELDS;
    await this.write([{ key, payload: message.body, fields: [f.id, message.id, f.contentType, message.contentType, f.data, message.body] }]);
  }

  /** Entries in one pipeline, in order; the first refused command fails them all. */
  private async write(commands: Entry[]): Promise<void> {
    const { kind, maxlen } = this.options.destination;
    const cap = maxlen === undefined ? [] : ['MAXLEN', '~', String(maxlen)];
    const verb = kind === 'channel' ? 'PUBLISH' : 'XADD';
    const replies = await this.run(commands.length === 1 ? `${verb} ${commands[0].key}` : `${verb} ×${commands.length}`, async (client) => {
      const pipeline = client.pipeline();
      for (const c of commands) {
        if (kind === 'channel') pipeline.publish(c.key, c.payload);
        else pipeline.call('XADD', c.key, ...cap, '*', ...c.fields);
      }
      const answered = await pipeline.exec();
      // The first refused command stands for the batch (classified like a single send's error).
      const failed = answered?.find(([err]) => err);
      if (failed) throw failed[0];
      if (!answered || answered.length !== commands.length) {
        throw new DeliveryError(`redis ${this.where()} answered ${answered?.length ?? 0} of ${commands.length} pipelined commands`, { retriable: true });
      }
      return answered;
    });
    if (kind === 'channel' && !this.warnedNoReceivers) {
      const unheard = replies.findIndex(([, subscribers]) => subscribers === 0);
      if (unheard >= 0) {
        this.warnedNoReceivers = true;
        this.log.warn({ channel: commands[unheard].key }, 'PUBLISH reached no subscriber: Redis Pub/Sub keeps nothing; use params.stream for durable delivery');
      }
    }
  }

  /** Connects (bounded by the timeout) and PINGs; for a fixed stream key, refuses a key of another type. */
  async check(): Promise<void> {
    try {
      await this.run('PING', (client) => client.ping());
      const d = this.options.destination;
      if (d.kind === 'stream' && !d.text.includes('{{')) {
        const type = await this.run(`TYPE ${d.text}`, (client) => client.type(d.text));
        if (type !== 'none' && type !== 'stream') {
          throw new PgceError(ErrorCodes.SINK_CONFIG, `redis key ${d.text} holds a ${type}, not a stream`);
        }
      }
    } catch (err) {
      if (err instanceof PgceError && err.code === ErrorCodes.SINK_CONFIG) throw err;
      throw new PgceError(ErrorCodes.SINK_UNREACHABLE, `redis broker ${this.options.brokerName} (${this.describe()}) is not usable: ${errorMessage(err)}`, {
        retriable: true,
        cause: err,
      });
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private destinationOf(event: CloudEvent<unknown>): string {
    return this.options.destination.template(event);
  }

  /** One command within the timeout, connection wait included; failures as DeliveryError. */
  private async run<T>(what: string, command: (client: Redis) => Promise<T>): Promise<T> {
    const budget = new Budget(this.options.timeoutMs);
    const client = await this.ready();
    try {
      return await budget.run(() => command(client));
    } catch (err) {
      if (err instanceof DeadlineExceeded) {
        throw new DeliveryError(`redis ${this.where()} did not answer ${what} within ${this.options.timeoutMs} ms`, { retriable: true });
      }
      if (err instanceof DeliveryError) throw err;
      const { retriable } = classifyRedisError(err);
      throw new DeliveryError(scrubSecrets(`redis ${this.where()} refused ${what}: ${errorMessage(err)}`), { retriable, cause: err });
    }
  }

  /**
   * The connected client. Waits for a connection in progress (up to the timeout) but fails at
   * once when the last attempt failed and the client is waiting to reconnect.
   */
  private async ready(): Promise<Redis> {
    const client = await this.client.get();
    if (client.status === 'ready') return client;
    if (client.status === 'reconnecting' || client.status === 'close' || client.status === 'end') throw this.unreachable(this.lastError);
    if (client.status === 'wait') client.connect().catch(() => undefined); // the 'error' event reports it
    let stop = () => undefined as void;
    try {
      await withDeadline(this.options.timeoutMs, () => new Promise<void>((resolve, reject) => {
        const onReady = () => settle();
        const onError = (err: Error) => settle(err);
        const onEnd = () => settle(this.lastError ?? new Error('connection ended'));
        stop = () => void client.off('ready', onReady).off('error', onError).off('end', onEnd);
        const settle = (err?: Error) => {
          stop();
          if (err) reject(err);
          else resolve();
        };
        client.on('ready', onReady).on('error', onError).on('end', onEnd);
      }), { onLate: () => stop() });
    } catch (err) {
      throw this.unreachable(err instanceof DeadlineExceeded ? new Error(`no connection within ${this.options.timeoutMs} ms`) : err as Error);
    }
    return client;
  }

  private unreachable(err: Error | undefined): DeliveryError {
    const message = scrubSecrets(`redis ${this.where()} unreachable: ${err ? describeCause(err) : 'not connected'}`);
    // A refused login is "refused for good" (401/403 in Knative's table), not an outage.
    if (err && isAuthError(err)) return new DeliveryError(message, { retriable: false, cause: err });
    return new DeliveryError(message, { retriable: true, code: ErrorCodes.SINK_UNREACHABLE, cause: err });
  }

  private open(): Redis {
    const c = this.options.connection;
    const options: RedisOptions = {
      host: c.host,
      port: c.port,
      db: c.db,
      username: c.username,
      password: c.password,
      tls: c.tls ? {} : undefined,
      lazyConnect: true,
      connectTimeout: this.options.timeoutMs,
      commandTimeout: this.options.timeoutMs,
      // No offline queue and no replays: a command runs now or fails now, and the delivery layer
      // (which owns retries and ordering) decides what happens next.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(times * 100, 2000),
      connectionName: 'pg-cloudevents',
    };
    const client = new Redis(options);
    client.on('error', (err: Error) => {
      this.lastError = err;
      this.log.debug({ err: scrubSecrets(errorMessage(err)) }, 'redis connection error');
    });
    client.on('ready', () => {
      this.lastError = undefined;
    });
    return client;
  }

  private where(): string {
    const c = this.options.connection;
    return `${c.host}:${c.port}`;
  }
}

function describeCause(err: Error): string {
  const code = (err as { code?: string }).code;
  return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}
