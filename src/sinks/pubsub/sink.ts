import { PubSub, type CallOptions, type ClientConfig, type PublishOptions, type Topic } from '@google-cloud/pubsub';
import type { CloudEvent } from 'cloudevents';
import { DeliveryError, ErrorCodes, PgceError, errorMessage } from '../../errors';
import { logger } from '../../logger';
import { withDeadline } from '../support/deadline';
import { fixedDestination, type Template } from '../template';
import type { PlainMessage, SendResult, Sink } from '../types';
import { encodeMessage, encodePlainMessage, LIMITS, orderingKeyFor, topicProblem, type PubSubMode, type PubSubPayload } from './encode';
import { GrpcCode, grpcCodeOf, isRetriableCode, publishError } from './errors';

const log = logger('sink.pubsub');

export interface PubSubSinkOptions {
  /** Name of the broker in the configuration, for messages. */
  name: string;
  projectId: string;
  apiEndpoint?: string;
  keyFilename?: string;
  /** The topic template as written, for describe(). */
  topicText: string;
  topic: Template;
  ordering: boolean;
  mode: PubSubMode;
  /** How long the publisher may wait to fill a batch; see PUBLISH_BATCH_MAX_MESSAGES. */
  batchDelayMs: number;
  /** Per-send bound (config.sink.timeoutMs). */
  timeoutMs: number;
}

/**
 * Batching. The engine sends up to `delivery.maxInFlight` (64) events at once, one per partition
 * key. Without ordering they share one publish queue, so a few milliseconds' window turns 64
 * concurrent sends into one Publish RPC instead of 64 (the client's default window is 10 ms, with
 * up to 100 messages): `batchDelayMs` defaults to 5 ms, small next to a Publish round trip to
 * Google (tens of ms), and 0 sends at the next tick (still coalescing sends of the same tick).
 * With ordering each key has its own queue and the engine never has two sends of one key in
 * flight, so a window could only add latency: it is 0 there.
 */
export const PUBLISH_BATCH_MAX_MESSAGES = 100;

const DEADLINE_MARGIN_MS = 250;

/**
 * Google Cloud Pub/Sub (`@google-cloud/pubsub` 5.x), CloudEvents Pub/Sub binding (encode.ts).
 * `send` resolves once the service returned the message id. One attempt: the client's own
 * retries are switched off (gax `retryCodes: []`), the delivery engine retries instead, and every
 * send is bounded by `timeoutMs` (gRPC deadline plus a timer for time spent queued in the client).
 * With `ordering`, the ordering key is the event's `partitionkey`; the client pauses a key after
 * a failed publish and would refuse it forever, so every failure resumes its key (the engine
 * retries the failed event before any later event of that key, so order holds).
 */
export class PubSubSink implements Sink {
  readonly name = 'pubsub';
  private client?: PubSub;
  private readonly topics = new Map<string, Topic>();
  /** A call to the endpoint has been answered (success or a gRPC refusal) by this client. */
  private answered = false;

  constructor(private readonly options: PubSubSinkOptions) {}

  describe(): string {
    const endpoint = this.options.apiEndpoint ?? process.env.PUBSUB_EMULATOR_HOST;
    return `pubsub projects/${this.options.projectId}/topics/${this.options.topicText}${endpoint ? ` via ${endpoint}` : ''}`;
  }

  async send(event: CloudEvent<unknown>): Promise<SendResult & { messageId: string }> {
    const orderingKey = this.options.ordering ? this.orderingKeyOf(event) : undefined;
    return this.publish(this.topicFor(event), encodeMessage(event, this.options.mode), orderingKey);
  }

  /**
   * A bare payload (trigger action) to the fixed topic (see encodePlainMessage); with `ordering`,
   * the ordering key is the message key, so one row's messages keep their order.
   */
  async sendMessage(message: PlainMessage): Promise<SendResult & { messageId: string }> {
    const topicName = this.valid(fixedDestination(this.options.topicText, `brokers.${this.options.name}.params.topic`));
    const orderingKey = this.options.ordering && message.key ? orderingKeyFor(message.key) : undefined;
    return this.publish(topicName, encodePlainMessage(message), orderingKey);
  }

  /** One message, within the per-send deadline; with an ordering key, a failure resumes the key. */
  private async publish(topicName: string, message: PubSubPayload, orderingKey: string | undefined): Promise<SendResult & { messageId: string }> {
    if (message.bytes > LIMITS.messageBytes) {
      throw new DeliveryError(`pubsub topic ${topicName}: message too large (${message.bytes} bytes; Pub/Sub accepts up to ${LIMITS.messageBytes})`, {
        retriable: false,
        detail: { bytes: message.bytes },
      });
    }
    const topic = this.topic(topicName);
    const published = topic.publishMessage({ data: message.data, attributes: message.attributes, orderingKey });
    if (orderingKey !== undefined) {
      // Resume on every failure, including one that arrives after our timer gave up on the send.
      published.catch(() => topic.resumePublishing(orderingKey));
    }
    try {
      const messageId = await withDeadline(this.options.timeoutMs, () => published, { error: (ms) => new SendTimeout(ms) });
      this.answered = true;
      return { messageId };
    } catch (err) {
      if (err instanceof SendTimeout) {
        throw new DeliveryError(`pubsub topic ${topicName}: not confirmed within ${this.options.timeoutMs} ms`, {
          retriable: true,
          code: this.answered ? undefined : ErrorCodes.SINK_UNREACHABLE,
          cause: err,
        });
      }
      const code = grpcCodeOf(err);
      if (code !== undefined && !isRetriableCode(code)) this.answered = true;
      throw publishError(err, `topic ${topicName}`, !this.answered);
    }
  }

  /**
   * Connectivity and, for a fixed topic, that the topic exists. GetTopic needs `pubsub.topics.get`,
   * which the Publisher role lacks: PERMISSION_DENIED proves the service answered, so it passes.
   * A templated topic is checked with ListTopics on the project (same reasoning).
   */
  async check(): Promise<void> {
    const client = this.pubsub();
    const gaxOpts = this.gaxOpts();
    const fixed = !this.options.topicText.includes('{{');
    try {
      if (fixed) await this.topic(this.options.topicText).get({ ...gaxOpts, autoCreate: false });
      else await client.getTopics({ pageSize: 1, autoPaginate: false, gaxOpts });
      this.answered = true;
    } catch (err) {
      const code = grpcCodeOf(err);
      if (code === GrpcCode.PERMISSION_DENIED) {
        log.warn({ broker: this.options.name }, `${this.describe()}: cannot read topic metadata (PERMISSION_DENIED); publishing is not verified`);
        return;
      }
      const what = code === GrpcCode.NOT_FOUND && fixed
        ? `topic ${this.options.topicText} does not exist in project ${this.options.projectId}`
        : errorMessage(publishError(err, 'check', !this.answered));
      throw new PgceError(ErrorCodes.SINK_UNREACHABLE, `broker ${this.options.name} (${this.describe()}) check failed: ${what}`, {
        retriable: isRetriableCode(code),
        cause: err,
      });
    }
  }

  /** Idempotent; pending publishes are flushed first. A later send opens a new client. */
  async close(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.client = undefined;
    const topics = [...this.topics.values()];
    this.topics.clear();
    await Promise.allSettled(topics.map((t) => t.flush()));
    await client.close().catch((err: unknown) => log.debug({ err: errorMessage(err) }, 'pubsub close'));
  }

  private topicFor(event: CloudEvent<unknown>): string {
    return this.valid(this.options.topic(event));
  }

  /** The topic, or a final DeliveryError for a name the service would refuse. */
  private valid(name: string): string {
    const problem = topicProblem(name);
    if (problem) throw new DeliveryError(`pubsub: params.topic rendered ${problem}`, { retriable: false });
    return name;
  }

  private orderingKeyOf(event: CloudEvent<unknown>): string {
    const key = (event as unknown as Record<string, unknown>).partitionkey;
    // An event without partitionkey (a user's override removed it) is ordered by its subject.
    return orderingKeyFor(String(key ?? event.subject ?? ''));
  }

  private pubsub(): PubSub {
    if (!this.client) {
      const config: ClientConfig = { projectId: this.options.projectId };
      if (this.options.apiEndpoint) config.apiEndpoint = this.options.apiEndpoint;
      if (this.options.keyFilename) config.keyFilename = this.options.keyFilename;
      this.client = new PubSub(config);
      this.answered = false;
    }
    return this.client;
  }

  private topic(name: string): Topic {
    let topic = this.topics.get(name);
    if (!topic) {
      const options: PublishOptions = {
        batching: {
          maxMessages: PUBLISH_BATCH_MAX_MESSAGES,
          maxMilliseconds: this.options.ordering ? 0 : this.options.batchDelayMs,
        },
        messageOrdering: this.options.ordering,
        gaxOpts: this.gaxOpts(),
      };
      topic = this.pubsub().topic(name, options);
      this.topics.set(name, topic);
    }
    return topic;
  }

  /**
   * One attempt (no retry codes). The gRPC deadline ends a little before the send's own timer, so
   * a Publish that gets no answer fails inside the client first: the client then fails the batch
   * (and, with ordering, pauses the key, which we resume) before the engine retries the event.
   */
  private gaxOpts(): CallOptions {
    const deadline = this.options.timeoutMs - Math.min(DEADLINE_MARGIN_MS, Math.floor(this.options.timeoutMs / 10));
    // gax merges this over the method's defaults: an empty code list means "never retry".
    return { timeout: deadline, retry: { retryCodes: [] } as unknown as CallOptions['retry'] };
  }
}

class SendTimeout extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = 'SendTimeout';
  }
}
