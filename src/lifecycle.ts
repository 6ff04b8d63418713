import type { CloudEvent } from 'cloudevents';
import type { Change, UndecodableChange } from './sources/change';
import type { InputAppliedEvent, RunEndedEvent, RunStartedEvent } from './workflows/hooks';
import { errorMessage } from './errors';
import { logger } from './logger';

/**
 * Everything observable that happens in the pipeline, in one typed map (graphile-worker's
 * WorkerEventMap pattern). Metrics, logs and /status subscribe here instead of being sprinkled
 * through capture and delivery.
 */
/**
 * A replica captures as the leader, or waits as a standby (leader election); it is starting until
 * its first attempt at the lock got an answer from the database.
 */
export type Role = 'starting' | 'leader' | 'standby';

export interface LifecycleEventMap {
  /** The replication stream is open and reading from `slot`. */
  'capture:connected': { slot: string; publication: string; startLsn: bigint };
  /** The replication connection closed or failed; capture will reconnect after `retryInMs`. */
  'capture:disconnected': { error?: Error; retryInMs: number };
  /** A change could not be decoded or built into an event; it is being dead-lettered with its raw row. */
  'capture:undecodable': { change: UndecodableChange };
  /** A change was decoded from the stream. */
  'capture:change': { change: Change };
  /**
   * A standby status update confirmed `lsn` as flushed to the slot (trigger mode: the journal
   * rows handed over up to position `lsn` are done, and `through`: every row handed over whose
   * id is at or below it is delivered or dead-lettered).
   */
  'capture:acknowledged': { lsn: bigint; through?: bigint };
  /** The server's current WAL end, from XLogData/keepalive headers (for lag). */
  'capture:walEnd': { lsn: bigint };
  /**
   * The sink accepted an event. `status` is the sink's answer code when it has one (HTTP).
   * `destination` (here and in the two events below) is the delivery's destination name (README
   * "Destination names"), the string the destination already holds: nothing is made per event.
   */
  'delivery:delivered': {
    event: CloudEvent<unknown>; destination: string; attempts: number; latencyMs: number; commitTime: Date; status?: number;
  };
  /** One attempt failed; `willRetry` says whether another attempt follows. */
  'delivery:attemptFailed': {
    event: CloudEvent<unknown>;
    destination: string;
    error: Error;
    status?: number;
    attempt: number;
    willRetry: boolean;
    retryInMs?: number;
  };
  /** Delivery failed for good; the event was stored as a dead letter (and sent to the dead-letter sink). */
  /** The destination had nothing to send for the event (a trigger's `when` was false): done, not delivered. */
  'delivery:skipped': { event: CloudEvent<unknown>; destination: string };
  'delivery:deadLettered': { event: CloudEvent<unknown>; destination: string; error: Error; attempts: number; status?: number };
  /** A heartbeat message was written to keep the slot moving while captured tables are idle. */
  'capture:heartbeat': { lsn: bigint };
  /** This replica's role changed (leader election). */
  'leader:role': { role: Role };
  /**
   * The leader election's own connection answered a query (reachable) or failed (not), emitted
   * on each change: it queries every `leader.pollInterval`, so it is a standby's proof that it
   * could take over (README, "Several replicas").
   */
  'leader:database': { reachable: boolean; error?: Error };
  /**
   * The trigger rules of one origin were (re)read: the configuration file's at start, the
   * triggers table's at every read (README "Rules at runtime"). Invalid rules are ignored.
   */
  'triggers:rules': { origin: 'file' | 'table'; active: number; inactive: number; invalid: number };
  /** A workflow input was applied (or was a redelivery, `applied` false) in Redis (README "Workflows"). */
  'workflow:input': InputAppliedEvent;
  /** A workflow run started (attempt 1), or was taken over from a runner that died. */
  'workflow:runStarted': RunStartedEvent;
  /** A workflow run ended: finished, failed, replayed (failed, and retried as a new instance) or stale. */
  'workflow:runEnded': RunEndedEvent;
  /** The leader started (or, `resumed`, continued after a restart or takeover) a backfill (README "Backfill"). */
  'backfill:started': { id: string; table: string; rowsEstimated: number | null; resumed: boolean };
  /**
   * A backfill chunk was delivered and its progress recorded: `read` rows, of which `emitted` were
   * sent and `superseded` dropped because a live change of the row came while the chunk was open.
   */
  'backfill:chunk': { id: string; table: string; read: number; emitted: number; superseded: number };
  /** A chunk is read again: the stream restarted, the table was truncated or changed shape (docs/backfill.md). */
  'backfill:redo': { id: string; table: string; reason: string };
  /** A backfill ended: done, cancelled, or failed (with why). */
  'backfill:finished': { id: string; table: string; state: 'done' | 'cancelled' | 'failed'; error?: string };
}

type Listener<K extends keyof LifecycleEventMap> = (payload: LifecycleEventMap[K]) => void;
type AnyListener = (payload: unknown) => void;

/** How often one failing listener is logged at most (it may fail on every event). */
const LISTENER_ERROR_LOG_MS = 60_000;

/**
 * A typed emitter whose listeners cannot hurt the emitter: each runs in its own try/catch, so a
 * throwing metrics or status subscriber never interrupts capture or delivery (which emit in the
 * middle of their own bookkeeping). A failing listener is logged, at most once a minute each.
 */
export class Lifecycle {
  private readonly log = logger('lifecycle');
  // Copy-on-write arrays: emit iterates without allocating, and a listener may unsubscribe itself.
  private readonly listeners = new Map<keyof LifecycleEventMap, readonly AnyListener[]>();
  private readonly lastErrorLog = new WeakMap<AnyListener, number>();
  /** Listener failures since start (a test seam and a debugging aid). */
  listenerErrors = 0;

  on<K extends keyof LifecycleEventMap>(name: K, listener: Listener<K>): this {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener as AnyListener]);
    return this;
  }

  off<K extends keyof LifecycleEventMap>(name: K, listener: Listener<K>): this {
    const list = this.listeners.get(name);
    if (!list) return this;
    const i = list.indexOf(listener as AnyListener);
    if (i >= 0) this.listeners.set(name, [...list.slice(0, i), ...list.slice(i + 1)]);
    return this;
  }

  listenerCount(name: keyof LifecycleEventMap): number {
    return this.listeners.get(name)?.length ?? 0;
  }

  emit<K extends keyof LifecycleEventMap>(name: K, payload: LifecycleEventMap[K]): void {
    const list = this.listeners.get(name);
    if (!list) return;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i](payload);
      } catch (err) {
        this.listenerFailed(name, list[i], err);
      }
    }
  }

  private listenerFailed(name: string, listener: AnyListener, err: unknown): void {
    this.listenerErrors++;
    const now = Date.now();
    const last = this.lastErrorLog.get(listener);
    if (last !== undefined && now - last < LISTENER_ERROR_LOG_MS) return;
    this.lastErrorLog.set(listener, now);
    this.log.error({ event: name, err: errorMessage(err) }, 'a lifecycle listener threw; the pipeline goes on without it');
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
