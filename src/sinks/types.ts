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
  /** Connectivity/configuration check for `pg-cloudevents check`; throws with a clear message. */
  check?(): Promise<void>;
  close(): Promise<void>;
  /** Destination for logs and /status, without secrets. */
  describe(): string;
}

export interface SendResult {
  status?: number;
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
