import type { CloudEvent } from 'cloudevents';
import type { DeliveryConfig } from '../config/types';

/**
 * A sink delivers one CloudEvent and resolves only when the receiver confirmed it. It throws a
 * `DeliveryError` that says whether retrying can help (`retriable`, and optionally `retryAfterMs`);
 * the delivery layer owns retries, backoff and ordering, so a sink makes exactly one attempt per
 * call. The whole contract, and how to add a sink, is in docs/sinks.md.
 */
export interface Sink {
  readonly name: string;
  /**
   * Resolve when the event is accepted; throw DeliveryError otherwise. One attempt. A sink that
   * has an answer code (HTTP) resolves with it, for the per-status metrics.
   */
  send(event: CloudEvent<unknown>): Promise<SendResult | void>;
  /**
   * Batch mode (`sink.mode: batch`): all events in one request, accepted or refused together.
   * Sinks without it get their events one by one.
   */
  sendBatch?(events: CloudEvent<unknown>[]): Promise<SendResult | void>;
  /**
   * Sends a message that is not a CloudEvent: a trigger action's bare rendered payload
   * (README, "Triggers"). Same contract as `send`: one attempt, DeliveryError on failure.
   * Broker sinks have it; a sink without it cannot be the target of a bare-payload action.
   */
  sendMessage?(message: PlainMessage): Promise<SendResult | void>;
  /** Connectivity/configuration check for `pg-cloudevents check`; throws with a clear message. */
  check?(): Promise<void>;
  close(): Promise<void>;
  /** Destination for logs and /status, without secrets. */
  describe(): string;
}

/** A bare payload, as django-action-triggers sends it: the body and its content type, no envelope. */
export interface PlainMessage {
  /** The rendered payload: JSON text, or the text a template rendered. */
  readonly body: Buffer;
  /** `application/json`, or `text/plain; charset=utf-8` for text that is not JSON. */
  readonly contentType: string;
  /**
   * Deterministic per (change, rule, action): the same on every retry and redelivery. Sent where
   * the transport has a message id or header (Kafka header `id`, RabbitMQ messageId, NATS
   * Nats-Msg-Id, Pub/Sub attribute `id`, Redis field `id`, MQTT user property `id`).
   */
  readonly id: string;
  /** The row's partition key: Kafka's message key, Pub/Sub's ordering key where ordering is on. */
  readonly key?: string;
}

export interface SendResult {
  status?: number;
  /**
   * Nothing was sent, on purpose, and the delivery is done: a trigger action whose `when` was
   * false. Counted as skipped, not delivered (pgce_events_skipped_total).
   */
  skipped?: boolean;
  /**
   * The answer's body when the sender was asked to keep it and it was a JSON object (a webhook
   * run by a workflow task: its result, README "Workflows"); absent otherwise.
   */
  body?: Record<string, unknown>;
}

/**
 * Where deliveries go: a sink with how to send to it. The delivery engine keeps order per
 * (destination, partition key), retries with the destination's policy and dead-letters naming it.
 * Resolved by name through the sinks registry (src/sinks/index.ts, `createDestination`).
 */
export interface Destination {
  /** The name it was resolved from: `http`, `console`, a broker name or a module path. */
  readonly name: string;
  readonly sink: Sink;
  /** 1: one event per send. >1: up to this many per `sink.sendBatch` (when the sink has it). */
  readonly batchSize: number;
  /** Retries, backoff and sends at once for this destination; default: the `delivery` section. */
  readonly policy?: DeliveryConfig;
}
