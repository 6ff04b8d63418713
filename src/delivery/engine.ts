import type { CloudEvent } from 'cloudevents';
import { setMaxListeners } from 'node:events';
import type { Change, UndecodableChange } from '../sources/change';
import type { DeliveryConfig } from '../config/types';
import { errorMessage } from '../errors';
import type { Lifecycle } from '../lifecycle';
import { logger } from '../logger';
import type { Router } from '../routing/contract';
import type { Destination } from '../sinks/types';
import type { ChangeConsumer, Position, SourceFeedback } from '../sources/contract';
import { AckNode, AckTracker } from './ack-tracker';
import { Budget, estimateEventBytes, eventCountLimit } from './budget';
import type { DeadLetterHandler, FailedDelivery } from './dead-letter';
import { deliverWithRetry, type AttemptFailure, type DeliveryFailure, type Sleep } from './deliver';
import { defaultPartitionKey, KeyQueue, ReadyList } from './partitions';
import { SendUnit } from './send-unit';
import { undecodableRecord, type UndecodableHandler } from './undecodable';
import { retry } from '../retry';

export interface EngineOptions {
  /** Change → deliveries (destination + event); its destinations are the engine's lanes. */
  router: Router;
  /**
   * `maxBufferBytes` (pause reading beyond), and the retry/backoff and `maxInFlight` (sends at once)
   * of each destination without a policy of its own.
   */
  policy: DeliveryConfig;
  lifecycle: Lifecycle;
  /** Leads back to the source: acknowledgements and backpressure. */
  feedback: SourceFeedback;
  deadLetter: DeadLetterHandler;
  /** Stores a change that could not be decoded or built into an event (the dead-letter table). */
  undecodable: UndecodableHandler;
  /**
   * Events with the same key and destination are delivered one after another; default: see
   * `defaultPartitionKey`.
   */
  partitionKey?(event: CloudEvent<unknown>, change: Change): string;
  /** Test seams, passed on to `deliverWithRetry`. */
  sleep?: Sleep;
  random?: () => number;
}

export interface EngineStats {
  /** Sends (events, or batches) in flight. */
  inFlight: number;
  /** The same, per destination name (made at each call: read at scrape time, not per event). */
  inFlightByDestination?: Map<string, number>;
  /** Events received and not yet delivered or dead-lettered. */
  buffered: number;
  bufferedBytes: number;
  /** Commit time of the oldest change not yet done (what holds the acknowledged position back). */
  oldestUndeliveredCommitTime?: Date;
}

/**
 * A change received and not yet done: its place in the acknowledgement order, and its first
 * delivery (so that a change with one delivery, the common case, costs one object).
 */
class Pending extends AckNode {
  nextInKey: Delivery | null = null;
  /** Deliveries of this change not yet delivered or dead-lettered. */
  open = 1;
  readonly owner: Pending = this;
  constructor(
    readonly change: Change,
    readonly event: CloudEvent<unknown>,
    readonly bytes: number,
  ) {
    super();
  }
}

/** A further delivery of a change routed to several destinations (or several events). */
class Extra {
  nextInKey: Delivery | null = null;
  constructor(
    readonly owner: Pending,
    readonly event: CloudEvent<unknown>,
    readonly bytes: number,
  ) {}

  get change(): Change {
    return this.owner.change;
  }
}

/** One event for one destination, queued under its partition key in its destination's lane. */
type Delivery = Pending | Extra;

/** A change that never became an event: it holds its place in the acknowledgement order until stored. */
class Unbuildable extends AckNode {
  constructor(readonly change: UndecodableChange) {
    super();
  }
}

type Tracked = Pending | Unbuildable;

/** A schema change in a lane and the deliveries of its table held back until it is done. */
interface Barrier {
  owner: Pending;
  held: { key: string; item: Delivery }[];
}

/** The table a change belongs to; an application event has none (no barrier holds it). */
function tableOf(change: Change): string | undefined {
  return change.kind === 'message' ? undefined : `${change.relation.schema}.${change.relation.table}`;
}

/** How the engine sends to one destination. */
interface LaneSpec {
  destination: Destination;
  policy: DeliveryConfig;
  maxInFlight: number;
  /** 1, or the destination's batch size when its sink can send batches. */
  batchSize: number;
}

/**
 * One destination's part of a round: its key queues, its keys ready to send and its sends in
 * flight. Order is per (destination, key), and each destination has its own send slots, so one
 * destination retrying (or down) does not hold back another.
 */
class Lane {
  readonly keys = new Map<string, KeyQueue<Delivery>>();
  readonly ready = new ReadyList<Delivery>();
  inFlight = 0;
  /** Made when a delivery first named its destination (a trigger rule added at runtime). */
  dynamic = false;
  /**
   * Schema changes not yet delivered or dead-lettered, by table: the table's later deliveries in
   * this lane wait behind each, in arrival order, so no row in a new shape goes before the event
   * announcing it. Empty unless `events.schemaChanges` produced one.
   */
  readonly barriers = new Map<string, Barrier>();
  constructor(readonly spec: LaneSpec) {}

  get idle(): boolean {
    return this.inFlight === 0 && this.keys.size === 0;
  }
}

/**
 * Everything between two stream (re)starts. `reset()` aborts a round and starts a new one, so a
 * send that settles late touches only its own (abandoned) round and acknowledges nothing.
 * `drain` (shutdown) only stops new attempts: an attempt in flight that succeeds still counts.
 */
class Round {
  readonly abort = new AbortController();
  readonly drain = new AbortController();
  readonly lanes: Lane[];
  private readonly byDestination = new Map<Destination, Lane>();
  readonly tracker: AckTracker<Tracked>;
  /** Sends on the wire, all lanes: each lane bounded by its maxInFlight; pgce_delivery_in_flight. */
  inFlight = 0;
  /** Undecodable changes being stored: not sends, so they take no send slot, but reset/stop wait for them too. */
  storing = 0;
  private waiters: (() => void)[] = [];

  constructor(
    onAcknowledge: (round: Round, position: Position, idle: boolean) => void,
    specs: readonly LaneSpec[],
    private readonly specFor: (destination: Destination) => LaneSpec,
  ) {
    this.tracker = new AckTracker<Tracked>((position, idle) => onAcknowledge(this, position, idle));
    this.lanes = specs.map((spec) => new Lane(spec));
    for (const lane of this.lanes) this.byDestination.set(lane.spec.destination, lane);
    this.boundListeners();
  }

  /**
   * The lane of `destination`: the first (the default) is found without a lookup. A destination
   * the router did not name at start (a trigger rule added at runtime) gets its lane now.
   */
  lane(destination: Destination): Lane {
    const first = this.lanes[0];
    if (first !== undefined && first.spec.destination === destination) return first;
    let lane = this.byDestination.get(destination);
    if (!lane) {
      lane = new Lane(this.specFor(destination));
      lane.dynamic = true;
      this.lanes.push(lane);
      this.byDestination.set(destination, lane);
      this.boundListeners();
    }
    return lane;
  }

  /** Forgets an idle lane made at runtime (its destination is no longer routed to). */
  dropLane(lane: Lane): void {
    const i = this.lanes.indexOf(lane);
    if (i >= 0) this.lanes.splice(i, 1);
    this.byDestination.delete(lane.spec.destination);
  }

  /**
   * Every send waiting out a backoff (or storing a dead letter) listens on `drain`: up to
   * maxInFlight per lane at once, each removed when its wait ends. That bound is not a leak, and
   * without it Node prints MaxListenersExceededWarning once 11 sends retry together.
   */
  private boundListeners(): void {
    setMaxListeners(this.lanes.reduce((n, l) => n + l.spec.maxInFlight, 0) + 1, this.drain.signal);
  }

  /** Abandon the round: no more attempts, and nothing of it is acknowledged. */
  abandon(): void {
    this.drain.abort();
    this.abort.abort();
  }

  sendSettled(lane: Lane): void {
    lane.inFlight--;
    this.inFlight--;
    this.wakeIfSettled();
  }

  storeSettled(): void {
    this.storing--;
    this.wakeIfSettled();
  }

  get busy(): number {
    return this.inFlight + this.storing;
  }

  settled(): Promise<void> {
    if (this.busy === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wakeIfSettled(): void {
    if (this.busy === 0 && this.waiters.length) {
      for (const resolve of this.waiters.splice(0)) resolve();
    }
  }
}

/**
 * The delivery engine (issue 3): the router turns each change into deliveries (destination +
 * event); deliveries with different (destination, partition key) are delivered concurrently, up to
 * each destination's `maxInFlight` sends; those with the same (destination, key) strictly in
 * arrival (= commit) order, a retrying head blocking only its own key. A final failure is
 * dead-lettered and its key moves on. A change is done once all its deliveries are; a
 * commit/position is acknowledged once every change before it is done (AckTracker). Memory is
 * bounded by asking the source to pause (Budget). Hot path: O(1) per event, no timers per event.
 */
export class DeliveryEngine implements ChangeConsumer {
  private readonly log = logger('delivery');
  private readonly lanes: readonly LaneSpec[];
  private readonly partitionKey: (event: CloudEvent<unknown>, change: Change) => string;
  private readonly budget: Budget;
  private round: Round;
  private stopped = false;
  private pumpScheduled = false;
  private acked: Position | undefined;
  /** The change being routed and its first delivery (set only during `router.route`). */
  private routing: Change | undefined;
  private routed: Pending | undefined;
  private readonly pumpTask = () => {
    this.pumpScheduled = false;
    this.pump();
  };
  /** The router's `deliver`: bound once, so routing a change allocates nothing of its own. */
  private readonly deliver = (destination: Destination, event: CloudEvent<unknown>): void => {
    const change = this.routing!;
    const round = this.round;
    const lane = round.lane(destination);
    const key = this.partitionKey(event, change);
    const bytes = estimateEventBytes(change, event);
    let item: Delivery;
    const first = this.routed;
    if (first === undefined) {
      const pending = (this.routed = new Pending(change, event, bytes));
      round.tracker.track(pending);
      item = pending;
    } else {
      first.open++;
      item = new Extra(first, event, bytes);
    }
    // Off the common path: only a lane that has (or gets) a schema change looks at tables.
    if ((lane.barriers.size === 0 && change.kind !== 'schema') || !this.hold(lane, key, item)) this.enqueue(lane, key, item);
    this.budget.add(bytes);
  };

  constructor(private readonly opts: EngineOptions) {
    this.lanes = opts.router.destinations.map((destination) => laneSpec(destination, opts.policy));
    this.partitionKey = opts.partitionKey ?? defaultPartitionKey;
    this.budget = new Budget(
      // Lanes made at runtime do not raise it; without any lane at start (rules only from the
      // triggers table), one lane's worth.
      Math.max(eventCountLimit(opts.policy.maxInFlight, 1), this.lanes.reduce((n, lane) => n + eventCountLimit(lane.maxInFlight, lane.batchSize), 0)),
      opts.policy.maxBufferBytes,
      (full) => opts.feedback.setPressure(full),
    );
    this.round = this.newRound();
  }

  change(change: Change): void {
    if (this.stopped) return;
    // Events are built on arrival, not at send time, so the byte budget counts what memory holds.
    this.routing = change;
    this.routed = undefined;
    try {
      this.opts.router.route(change, this.deliver);
    } catch (err) {
      // Deterministic: building it again gives the same error, so retrying would stall the slot.
      this.undecodable({ ...change, raw: rowsOf(change), error: err instanceof Error ? err : new Error(String(err)) });
      return;
    } finally {
      this.routing = undefined;
    }
    if (this.routed === undefined) return;
    this.routed = undefined;
    // One pump per burst: the source hands over a socket read's worth of changes synchronously,
    // and starting sends after the burst fills batches without any linger timer.
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      queueMicrotask(this.pumpTask);
    }
  }

  undecodable(change: UndecodableChange): void {
    if (this.stopped) return;
    const round = this.round;
    const item = new Unbuildable(change);
    round.tracker.track(item);
    this.opts.lifecycle.emit('capture:undecodable', { change });
    const record = undecodableRecord(change);
    round.storing++;
    const { signal } = round.drain;
    void this.storeDurably(() => this.opts.undecodable(record, signal), record.eventId, signal)
      .then((stored) => {
        if (stored && !round.abort.signal.aborted) round.tracker.done(item);
      })
      .finally(() => {
        round.storeSettled();
        if (!round.abort.signal.aborted) this.pump();
      });
  }

  commit(end: Position): void {
    if (!this.stopped) this.round.tracker.mark(end);
  }

  position(position: Position): void {
    if (!this.stopped) this.round.tracker.mark(position);
  }

  /** Abort what is in flight and queued, wait for in-flight sends to settle, forget everything. */
  async reset(): Promise<void> {
    await this.abandonRound().settled();
  }

  /**
   * Refuse further work and start no new attempt (retry waits end now); attempts already on the
   * wire may finish for up to `graceMs`, and what they deliver is acknowledged. Then the rest is
   * abandoned, unacknowledged, without waiting for sends that still hang (the process is ending).
   */
  async stop(graceMs = 0): Promise<void> {
    this.stopped = true;
    const round = this.round;
    round.drain.abort();
    if (graceMs > 0 && round.busy > 0) {
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([round.settled(), expired]);
      clearTimeout(timer);
      if (round.busy > 0) this.log.warn({ inFlight: round.inFlight, storing: round.storing, graceMs }, 'shutdown grace period over: abandoning the sends still in flight (unacknowledged, sent again after a restart)');
    }
    this.abandonRound();
  }

  stats(): EngineStats {
    this.dropRetiredLanes(this.round);
    const oldest = this.round.tracker.oldest();
    const inFlightByDestination = new Map<string, number>();
    for (const lane of this.round.lanes) {
      const { name } = lane.spec.destination;
      inFlightByDestination.set(name, (inFlightByDestination.get(name) ?? 0) + lane.inFlight);
    }
    return {
      inFlight: this.round.inFlight,
      inFlightByDestination,
      buffered: this.budget.count,
      bufferedBytes: this.budget.bytes,
      oldestUndeliveredCommitTime: oldest?.change.commitTime,
    };
  }

  /** Replaces the round by a fresh one; the old one is abandoned and returned. */
  private abandonRound(): Round {
    const old = this.round;
    this.round = this.newRound();
    old.abandon();
    old.tracker.clear();
    this.budget.clear();
    return old;
  }

  private newRound(): Round {
    return new Round((round, position, idle) => {
      // Still acknowledged while stopping: a send that finishes in the grace period counts.
      if (round !== this.round || round.abort.signal.aborted) return;
      if (this.acked !== undefined && position <= this.acked) return;
      this.acked = position;
      this.opts.feedback.acknowledge(position, idle);
    }, this.lanes, (destination) => laneSpec(destination, this.opts.policy));
  }

  /**
   * A lane made at runtime whose destination the router no longer names (a trigger rule removed
   * or replaced) is forgotten once it delivered what it had: no lanes pile up over rule changes.
   */
  private dropRetiredLanes(round: Round, only?: Lane): void {
    const lanes = only ? [only] : round.lanes.filter((l) => l.dynamic);
    for (const lane of lanes) {
      if (lane.dynamic && lane.idle && !this.opts.router.destinations.includes(lane.spec.destination)) round.dropLane(lane);
    }
  }

  private enqueue(lane: Lane, key: string, item: Delivery): void {
    let queue = lane.keys.get(key);
    if (!queue) {
      queue = new KeyQueue<Delivery>(key);
      lane.keys.set(key, queue);
    }
    queue.push(item);
    if (!queue.busy) lane.ready.push(queue);
  }

  // --- schema-change barriers (README "Schema-change events") ---

  /**
   * True when `item` must wait behind its table's schema change in this lane (it is held then).
   * A schema change not held starts a barrier of its own and is queued as usual.
   */
  private hold(lane: Lane, key: string, item: Delivery): boolean {
    const table = tableOf(item.change);
    if (table === undefined) return false;
    const barrier = lane.barriers.get(table);
    if (barrier !== undefined && barrier.owner !== item.owner) {
      barrier.held.push({ key, item });
      return true;
    }
    if (item.change.kind === 'schema' && barrier === undefined) lane.barriers.set(table, { owner: item.owner, held: [] });
    return false;
  }

  /** A schema change is done (delivered or dead-lettered): what waited behind it is queued, in order. */
  private release(lane: Lane, item: Delivery): void {
    if (item.change.kind !== 'schema') return;
    const table = tableOf(item.change)!;
    const barrier = lane.barriers.get(table);
    if (barrier === undefined || barrier.owner !== item.owner) return;
    lane.barriers.delete(table);
    // A later schema change among them starts the next barrier and holds what follows it.
    for (const { key, item: held } of barrier.held) if (!this.hold(lane, key, held)) this.enqueue(lane, key, held);
  }

  // --- end schema-change barriers ---

  /** Start sends while there are free slots and ready keys, lane by lane. */
  private pump(): void {
    const round = this.round;
    if (this.stopped) return;
    const { lanes } = round;
    for (let i = 0; i < lanes.length; i++) this.pumpLane(round, lanes[i]);
  }

  private pumpLane(round: Round, lane: Lane): void {
    const { ready, spec } = lane;
    const { batchSize } = spec;
    while (lane.inFlight < spec.maxInFlight && !ready.empty) {
      const items: Delivery[] = [];
      const queues: KeyQueue<Delivery>[] = [];
      // A batch takes consecutive events of ready keys; every key in it stays busy until the
      // batch settles, so per-key order holds across batches.
      do {
        const queue = ready.shift()!;
        queue.busy = true;
        queues.push(queue);
        queue.takeInto(items, batchSize - items.length);
      } while (items.length < batchSize && !ready.empty);
      lane.inFlight++;
      round.inFlight++;
      void this.run(round, lane, items, queues);
    }
  }

  private async run(round: Round, lane: Lane, items: Delivery[], queues: KeyQueue<Delivery>[]): Promise<void> {
    const { signal } = round.abort;
    const drain = round.drain.signal;
    const { destination, policy, batchSize } = lane.spec;
    const unit = new SendUnit(destination.sink, items.map((i) => i.event), batchSize > 1);
    const firstAttemptAt = new Date();
    try {
      let attempts: number;
      try {
        ({ attempts } = await deliverWithRetry(unit, items[0].event, policy, {
          signal: drain,
          sleep: this.opts.sleep,
          random: this.opts.random,
          onAttemptFailed: (failure) => this.attemptFailed(items, destination.name, failure),
        }));
      } catch (err) {
        if (drain.aborted) return;
        await this.deadLetterAll(round, destination, items, err as DeliveryFailure, firstAttemptAt);
        return;
      }
      const now = Date.now();
      const { lifecycle } = this.opts;
      for (const item of items) {
        const { commitTime } = item.change;
        // Emitted even when aborted meanwhile: the sink did accept it (metrics stay true); it is
        // simply not acknowledged, and will be sent again after the restart.
        if (unit.skipped) {
          lifecycle.emit('delivery:skipped', { event: item.event, destination: destination.name });
        } else {
          lifecycle.emit('delivery:delivered', {
            event: item.event, destination: destination.name, attempts, latencyMs: now - commitTime.getTime(), commitTime, status: unit.status,
          });
        }
        this.finish(round, item);
        this.release(lane, item);
      }
    } catch (err) {
      // A lifecycle listener threw: a bug elsewhere; the events stay unacknowledged, never lost.
      this.log.error({ err: errorMessage(err) }, 'delivery engine: unexpected error after a send');
    } finally {
      round.sendSettled(lane);
      if (!signal.aborted) {
        for (const queue of queues) {
          queue.busy = false;
          if (!queue.empty) lane.ready.push(queue);
          else lane.keys.delete(queue.key);
        }
        if (lane.dynamic && lane.idle) this.dropRetiredLanes(round, lane);
        this.pump();
      }
    }
  }

  private attemptFailed(items: Delivery[], destination: string, { error, attempt, willRetry, retryInMs }: AttemptFailure): void {
    for (const item of items) {
      this.opts.lifecycle.emit('delivery:attemptFailed', {
        event: item.event, destination, error, status: error.status, attempt, willRetry, retryInMs,
      });
    }
  }

  /** Each event of the failed send, in order; stops (leaving the rest undone) on shutdown. */
  private async deadLetterAll(
    round: Round, destination: Destination, items: Delivery[], error: DeliveryFailure, firstAttemptAt: Date,
  ): Promise<void> {
    const lastAttemptAt = new Date();
    const attempts = error.attempts ?? 1;
    const status = error.status;
    for (const item of items) {
      const failed: FailedDelivery = {
        event: item.event, change: item.change, destination, error, status, attempts, firstAttemptAt, lastAttemptAt,
      };
      const { signal } = round.drain;
      if (!(await this.storeDurably(() => this.opts.deadLetter(failed, signal), item.event.id, signal))) return;
      this.opts.lifecycle.emit('delivery:deadLettered', { event: item.event, destination: destination.name, error, attempts, status });
      this.finish(round, item);
      this.release(round.lane(destination), item);
    }
  }

  /**
   * True once stored. Handlers retry storage themselves and reject only on shutdown; should one
   * reject otherwise, the record is not dropped: it is offered again after the longest backoff.
   */
  private async storeDurably(store: () => Promise<void>, id: string, signal: AbortSignal): Promise<boolean> {
    const waitMs = this.opts.policy.backoffMaxMs;
    try {
      await retry(store, {
        // Handlers already back off inside; this outer wait is the longest one, every time.
        policy: { kind: 'linear', delayMs: waitMs, maxMs: waitMs },
        signal,
        retriable: () => true,
        onFailure: ({ error }) => {
          if (signal.aborted) return;
          this.log.error(
            { id, err: errorMessage(error), retryInMs: waitMs },
            'storing a dead letter failed; retrying (its position stays unacknowledged)',
          );
        },
      });
      return true;
    } catch {
      return false;
    }
  }

  private finish(round: Round, item: Delivery): void {
    // An abandoned round's events were forgotten (and the budget cleared) by `reset`.
    if (round.abort.signal.aborted) return;
    this.budget.remove(item.bytes);
    const owner = item.owner;
    if (--owner.open === 0) round.tracker.done(owner);
  }
}

function laneSpec(destination: Destination, defaults: DeliveryConfig): LaneSpec {
  const policy = destination.policy ?? defaults;
  const batchSize = destination.sink.sendBatch && destination.batchSize > 1 ? Math.floor(destination.batchSize) : 1;
  return { destination, policy, maxInFlight: Math.max(1, Math.floor(policy.maxInFlight)), batchSize };
}

/** The rows a change carries, for the record of a change whose event could not be built. */
function rowsOf(change: Change): Record<string, unknown> {
  switch (change.kind) {
    case 'insert':
      return { new: change.new };
    case 'update':
      return { new: change.new, old: change.old };
    case 'delete':
      return { old: change.old };
    case 'truncate':
      return {};
    case 'schema':
      return { old: change.oldColumns, new: change.newColumns };
    case 'message':
      return { event: change.event };
  }
}
