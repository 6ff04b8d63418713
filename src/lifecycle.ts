import { EventEmitter } from 'node:events';
import type { CloudEvent } from 'cloudevents';
import type { Change } from './capture/change';

/**
 * Everything observable that happens in the pipeline, in one typed map (graphile-worker's
 * WorkerEventMap pattern). Metrics, logs and /status subscribe here instead of being sprinkled
 * through capture and delivery.
 */
/** A replica captures as the leader, or waits as a standby (leader election). */
export type Role = 'leader' | 'standby';

export interface LifecycleEventMap {
  /** The replication stream is open and reading from `slot`. */
  'capture:connected': { slot: string; publication: string; startLsn: bigint };
  /** The replication connection closed or failed; capture will reconnect after `retryInMs`. */
  'capture:disconnected': { error?: Error; retryInMs: number };
  /** A change was decoded from the stream. */
  'capture:change': { change: Change };
  /** A standby status update confirmed `lsn` as flushed to the slot. */
  'capture:acknowledged': { lsn: bigint };
  /** The server's current WAL end, from XLogData/keepalive headers (for lag). */
  'capture:walEnd': { lsn: bigint };
  /** The sink accepted an event. `status` is the sink's answer code when it has one (HTTP). */
  'delivery:delivered': { event: CloudEvent<unknown>; attempts: number; latencyMs: number; commitTime: Date; status?: number };
  /** One attempt failed; `willRetry` says whether another attempt follows. */
  'delivery:attemptFailed': {
    event: CloudEvent<unknown>;
    error: Error;
    status?: number;
    attempt: number;
    willRetry: boolean;
    retryInMs?: number;
  };
  /** Delivery failed for good; the event was stored as a dead letter (and sent to the dead-letter sink). */
  'delivery:deadLettered': { event: CloudEvent<unknown>; error: Error; attempts: number; status?: number };
  /** A heartbeat message was written to keep the slot moving while captured tables are idle. */
  'capture:heartbeat': { lsn: bigint };
  /** This replica's role changed (leader election). */
  'leader:role': { role: Role };
}

type Listener<K extends keyof LifecycleEventMap> = (payload: LifecycleEventMap[K]) => void;

export class Lifecycle {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(50);
  }

  on<K extends keyof LifecycleEventMap>(name: K, listener: Listener<K>): this {
    this.emitter.on(name, listener as (payload: unknown) => void);
    return this;
  }

  off<K extends keyof LifecycleEventMap>(name: K, listener: Listener<K>): this {
    this.emitter.off(name, listener as (payload: unknown) => void);
    return this;
  }

  emit<K extends keyof LifecycleEventMap>(name: K, payload: LifecycleEventMap[K]): void {
    this.emitter.emit(name, payload);
  }
}

/** A handler for any subset of the lifecycle events; metrics, logs and /status are such maps. */
export type LifecycleHandlers = { [K in keyof LifecycleEventMap]?: (payload: LifecycleEventMap[K]) => void };

export function subscribe(lifecycle: Lifecycle, handlers: LifecycleHandlers): void {
  for (const name of Object.keys(handlers) as (keyof LifecycleEventMap)[]) {
    lifecycle.on(name, handlers[name] as never);
  }
}

export function unsubscribe(lifecycle: Lifecycle, handlers: LifecycleHandlers): void {
  for (const name of Object.keys(handlers) as (keyof LifecycleEventMap)[]) {
    lifecycle.off(name, handlers[name] as never);
  }
}
