import type { CloudEvent } from 'cloudevents';
import { setMaxListeners } from 'node:events';
import type { Change, UndecodableChange } from '../sources/change';
import type { DeliveryConfig } from '../config/types';
import { errorMessage } from '../errors';
import type { Lifecycle } from '../lifecycle';
import { logger } from '../logger';
import type { Sink } from '../sinks/types';
import { AckNode, AckTracker } from './ack-tracker';
import { Budget, estimateEventBytes, eventCountLimit } from './budget';
import type { ChangeConsumer, ConsumerHooks } from './consumer';
import type { DeadLetterHandler, FailedDelivery } from './dead-letter';
import { deliverWithRetry, type AttemptFailure, type DeliveryFailure, type Sleep } from './deliver';
import { defaultPartitionKey, KeyQueue, ReadyList } from './partitions';
import { SendUnit } from './send-unit';
import { undecodableRecord, type UndecodableHandler } from './undecodable';

export interface EngineOptions {
  sink: Sink;
  /** Retry/backoff, `maxInFlight` (sends at once) and `maxBufferBytes` (pause reading beyond). */
  policy: DeliveryConfig;
  /** 1: one event per send. >1: up to this many per `sink.sendBatch` (when the sink has it). */
  batchSize: number;
  lifecycle: Lifecycle;
  hooks: ConsumerHooks;
  buildEvent(change: Change): CloudEvent<unknown>;
  deadLetter: DeadLetterHandler;
  /** Stores a change that could not be decoded or built into an event (the dead-letter table). */
  undecodable: UndecodableHandler;
  /** Events with the same key are delivered one after another; default: see `defaultPartitionKey`. */
  partitionKey?(event: CloudEvent<unknown>, change: Change): string;
  /** Test seams, passed on to `deliverWithRetry`. */
  sleep?: Sleep;
  random?: () => number;
}

export interface EngineStats {
  /** Sends (events, or batches) in flight. */
  inFlight: number;
  /** Events received and not yet delivered or dead-lettered. */
  buffered: number;
  bufferedBytes: number;
  /** Commit time of the oldest change not yet done (what holds the acknowledged position back). */
  oldestUndeliveredCommitTime?: Date;
}

/** A change received and not yet done: its event, its key, its place in the acknowledgement order. */
class Pending extends AckNode {
  nextInKey: Pending | null = null;
  constructor(
    readonly change: Change,
    readonly event: CloudEvent<unknown>,
    readonly queue: KeyQueue<Pending>,
    readonly bytes: number,
  ) {
    super();
  }
}

/** A change that never became an event: it holds its place in the acknowledgement order until stored. */
class Unbuildable extends AckNode {
  constructor(readonly change: UndecodableChange) {
    super();
  }
}

type Tracked = Pending | Unbuildable;

/**
 * Everything between two stream (re)starts. `reset()` aborts a round and starts a new one, so a
 * send that settles late touches only its own (abandoned) round and acknowledges nothing.
 * `drain` (shutdown) only stops new attempts: an attempt in flight that succeeds still counts.
 */
class Round {
  readonly abort = new AbortController();
  readonly drain = new AbortController();
  readonly keys = new Map<string, KeyQueue<Pending>>();
  readonly ready = new ReadyList<Pending>();
  readonly tracker: AckTracker<Tracked>;
  /** Sends on the wire: bounded by maxInFlight, reported as pgce_delivery_in_flight. */
  inFlight = 0;
  /** Undecodable changes being stored: not sends, so they take no send slot, but reset/stop wait for them too. */
  storing = 0;
  private waiters: (() => void)[] = [];

  constructor(onAcknowledge: (round: Round, lsn: bigint, idle: boolean) => void, maxInFlight: number) {
    this.tracker = new AckTracker<Tracked>((lsn, idle) => onAcknowledge(this, lsn, idle));
    // Every send waiting out a backoff (or storing a dead letter) listens on `drain`: up to
    // maxInFlight at once, each removed when its wait ends. That bound is not a leak, and without
    // it Node prints MaxListenersExceededWarning once 11 sends retry together.
    setMaxListeners(maxInFlight + 1, this.drain.signal);
  }

  /** Abandon the round: no more attempts, and nothing of it is acknowledged. */
  abandon(): void {
    this.drain.abort();
    this.abort.abort();
  }

  sendSettled(): void {
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
 * The delivery engine (issue 3): events with different partition keys are delivered concurrently,
 * up to `maxInFlight` sends; events with the same key strictly in arrival (= commit) order, a
 * retrying head blocking only its own key. A final failure is dead-lettered and its key moves on.
 * A commit/position is acknowledged once every change before it is done (AckTracker). Memory is
 * bounded by asking capture to pause (Budget). Hot path: O(1) per event, no timers per event.
 */
export class DeliveryEngine implements ChangeConsumer {
  private readonly log = logger('delivery');
  private readonly maxInFlight: number;
  private readonly batchSize: number;
  private readonly partitionKey: (event: CloudEvent<unknown>, change: Change) => string;
  private readonly budget: Budget;
  private round: Round;
  private stopped = false;
  private pumpScheduled = false;
  private acked: bigint | undefined;
  private readonly pumpTask = () => {
    this.pumpScheduled = false;
    this.pump();
  };

  constructor(private readonly opts: EngineOptions) {
    this.maxInFlight = Math.max(1, Math.floor(opts.policy.maxInFlight));
    this.batchSize = opts.sink.sendBatch && opts.batchSize > 1 ? Math.floor(opts.batchSize) : 1;
    this.partitionKey = opts.partitionKey ?? defaultPartitionKey;
    this.budget = new Budget(
      eventCountLimit(this.maxInFlight, this.batchSize),
      opts.policy.maxBufferBytes,
      (full) => opts.hooks.onPressure(full),
    );
    this.round = this.newRound();
  }

  change(change: Change): void {
    if (this.stopped) return;
    // Built on arrival, not at send time, so the byte budget counts what memory really holds.
    let event: CloudEvent<unknown>;
    try {
      event = this.opts.buildEvent(change);
    } catch (err) {
      // Deterministic: building it again gives the same error, so retrying would stall the slot.
      this.undecodable({ ...change, raw: rowsOf(change), error: err instanceof Error ? err : new Error(String(err)) });
      return;
    }
    const key = this.partitionKey(event, change);
    const round = this.round;
    let queue = round.keys.get(key);
    if (!queue) {
      queue = new KeyQueue<Pending>(key);
      round.keys.set(key, queue);
    }
    const item = new Pending(change, event, queue, estimateEventBytes(change, event));
    round.tracker.track(item);
    queue.push(item);
    if (!queue.busy) round.ready.push(queue);
    this.budget.add(item.bytes);
    // One pump per burst: capture hands over a socket read's worth of changes synchronously, and
    // starting sends after the burst fills batches without any linger timer.
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

  commit(endLsn: bigint): void {
    if (!this.stopped) this.round.tracker.mark(endLsn);
  }

  position(lsn: bigint): void {
    if (!this.stopped) this.round.tracker.mark(lsn);
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
    const oldest = this.round.tracker.oldest();
    return {
      inFlight: this.round.inFlight,
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
    return new Round((round, lsn, idle) => {
      // Still acknowledged while stopping: a send that finishes in the grace period counts.
      if (round !== this.round || round.abort.signal.aborted) return;
      if (this.acked !== undefined && lsn <= this.acked) return;
      this.acked = lsn;
      this.opts.hooks.acknowledge(lsn, idle);
    }, this.maxInFlight);
  }

  /** Start sends while there are free slots and ready keys. */
  private pump(): void {
    const round = this.round;
    if (this.stopped) return;
    const { ready } = round;
    while (round.inFlight < this.maxInFlight && !ready.empty) {
      const items: Pending[] = [];
      const queues: KeyQueue<Pending>[] = [];
      // A batch takes consecutive events of ready keys; every key in it stays busy until the
      // batch settles, so per-key order holds across batches.
      do {
        const queue = ready.shift()!;
        queue.busy = true;
        queues.push(queue);
        queue.takeInto(items, this.batchSize - items.length);
      } while (items.length < this.batchSize && !ready.empty);
      round.inFlight++;
      void this.run(round, items, queues);
    }
  }

  private async run(round: Round, items: Pending[], queues: KeyQueue<Pending>[]): Promise<void> {
    const { signal } = round.abort;
    const drain = round.drain.signal;
    const unit = new SendUnit(this.opts.sink, items.map((i) => i.event), this.batchSize > 1);
    const firstAttemptAt = new Date();
    try {
      let attempts: number;
      try {
        ({ attempts } = await deliverWithRetry(unit, items[0].event, this.opts.policy, {
          signal: drain,
          sleep: this.opts.sleep,
          random: this.opts.random,
          onAttemptFailed: (failure) => this.attemptFailed(items, failure),
        }));
      } catch (err) {
        if (drain.aborted) return;
        await this.deadLetterAll(round, items, err as DeliveryFailure, firstAttemptAt);
        return;
      }
      const now = Date.now();
      const { lifecycle } = this.opts;
      for (const item of items) {
        const { commitTime } = item.change;
        // Emitted even when aborted meanwhile: the sink did accept it (metrics stay true); it is
        // simply not acknowledged, and will be sent again after the restart.
        lifecycle.emit('delivery:delivered', {
          event: item.event, attempts, latencyMs: now - commitTime.getTime(), commitTime, status: unit.status,
        });
        this.finish(round, item);
      }
    } catch (err) {
      // A lifecycle listener threw: a bug elsewhere; the events stay unacknowledged, never lost.
      this.log.error({ err: errorMessage(err) }, 'delivery engine: unexpected error after a send');
    } finally {
      round.sendSettled();
      if (!signal.aborted) {
        for (const queue of queues) {
          queue.busy = false;
          if (!queue.empty) round.ready.push(queue);
          else round.keys.delete(queue.key);
        }
        this.pump();
      }
    }
  }

  private attemptFailed(items: Pending[], { error, attempt, willRetry, retryInMs }: AttemptFailure): void {
    for (const item of items) {
      this.opts.lifecycle.emit('delivery:attemptFailed', {
        event: item.event, error, status: error.status, attempt, willRetry, retryInMs,
      });
    }
  }

  /** Each event of the failed send, in order; stops (leaving the rest undone) on shutdown. */
  private async deadLetterAll(round: Round, items: Pending[], error: DeliveryFailure, firstAttemptAt: Date): Promise<void> {
    const lastAttemptAt = new Date();
    const attempts = error.attempts ?? 1;
    const status = error.status;
    for (const item of items) {
      const failed: FailedDelivery = {
        event: item.event, change: item.change, error, status, attempts, firstAttemptAt, lastAttemptAt,
      };
      const { signal } = round.drain;
      if (!(await this.storeDurably(() => this.opts.deadLetter(failed, signal), item.event.id, signal))) return;
      this.opts.lifecycle.emit('delivery:deadLettered', { event: item.event, error, attempts, status });
      this.finish(round, item);
    }
  }

  /**
   * True once stored. Handlers retry storage themselves and reject only on shutdown; should one
   * reject otherwise, the record is not dropped: it is offered again after the longest backoff.
   */
  private async storeDurably(store: () => Promise<void>, id: string, signal: AbortSignal): Promise<boolean> {
    for (;;) {
      try {
        await store();
        return true;
      } catch (err) {
        if (signal.aborted) return false;
        this.log.error(
          { id, err: errorMessage(err), retryInMs: this.opts.policy.backoffMaxMs },
          'storing a dead letter failed; retrying (its position stays unacknowledged)',
        );
        if (!(await pause(this.opts.policy.backoffMaxMs, signal))) return false;
      }
    }
  }

  private finish(round: Round, item: Pending): void {
    // An abandoned round's events were forgotten (and the budget cleared) by `reset`.
    if (round.abort.signal.aborted) return;
    this.budget.remove(item.bytes);
    round.tracker.done(item);
  }
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
  }
}

/** Resolves true after `ms`, false at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
