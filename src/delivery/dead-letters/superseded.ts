import type { CloudEvent } from 'cloudevents';
import { errorMessage } from '../../errors';
import type { Lifecycle, LifecycleEventMap } from '../../lifecycle';
import { logger } from '../../logger';
import type { DeadLetterStore, DestinationKey } from './store';

/** Deliveries remembered while the watched keys are not loaded yet; past it they are dropped (and logged). */
const MAX_PENDING_KEYS = 10_000;
/** A failed load is tried again on a delivery, at most this often. */
const RELOAD_AFTER_MS = 5_000;

type Marks = Pick<DeadLetterStore, 'partitionKeys' | 'markSuperseded' | 'tableName'>;

/**
 * One map key per (destination, partition key): a row's events reach each destination in their own
 * order, so only a newer delivery to the same destination supersedes a dead letter. NUL cannot
 * occur in a destination name (text in PostgreSQL refuses it).
 */
const watchKey = (destination: string, partitionKey: string): string => `${destination}\u0000${partitionKey}`;
const splitKey = (key: string): DestinationKey => {
  const at = key.indexOf('\u0000');
  return { destination: key.slice(0, at), partitionKey: key.slice(at + 1) };
};

/**
 * Knative's default when an event is dead-lettered is to continue: the row's next events are
 * still delivered. Replaying the dead letter later then delivers an older state last. This
 * watches deliveries (`delivery:delivered`) of the partition keys that have dead letters at the
 * same destination and records on those rows the newest sequence delivered there since
 * (`superseded_by_sequence`), so `dead-letters replay` can warn.
 *
 * The hot path costs one Map lookup for keys without dead letters. The set is loaded when capture
 * connects (after set-up created or upgraded the table), grows as dead letters are stored
 * (`watch`, called by the handler before the key's next event can be sent: per-key order), and
 * drops a key once its rows are gone (replayed or purged). One UPDATE per key runs at a time;
 * deliveries meanwhile collapse into the newest sequence. Nothing here throws into the emitter:
 * a failure only costs the warning, and is logged.
 */
export class SupersededTracker {
  /** Watched key → generation (bumped by `watch`, so a concurrent "no rows left" cannot drop a new dead letter's key). */
  private readonly keys = new Map<string, number>();
  private generation = 0;
  private loaded = false;
  private loading: Promise<void> | undefined;
  private lastLoadFailedAt = 0;
  /** Deliveries seen before the keys were loaded: key → newest sequence. */
  private readonly pending = new Map<string, string>();
  private pendingOverflowLogged = false;
  /** Keys with an UPDATE running → the newest sequence delivered meanwhile. */
  private readonly running = new Map<string, string | undefined>();
  /** Loads and UPDATEs under way, for `idle`. */
  private readonly work = new Set<Promise<void>>();
  private readonly log = logger('dead-letters');
  private lifecycle: Lifecycle | undefined;

  constructor(private readonly store: Marks) {}

  subscribe(lifecycle: Lifecycle): void {
    this.lifecycle = lifecycle;
    lifecycle.on('capture:connected', this.onConnected);
    lifecycle.on('delivery:delivered', this.onDelivered);
  }

  unsubscribe(): void {
    this.lifecycle?.off('capture:connected', this.onConnected);
    this.lifecycle?.off('delivery:delivered', this.onDelivered);
    this.lifecycle = undefined;
  }

  /** A dead letter of this event was stored for `destination`: watch its partition key there. */
  watch(event: CloudEvent<unknown>, destination: string): void {
    const key = stringExtension(event, 'partitionkey');
    if (key !== undefined && stringExtension(event, 'sequence') !== undefined) this.keys.set(watchKey(destination, key), ++this.generation);
  }

  /** Loads the watched keys from the table; resolves when done (failures are logged, not thrown). */
  load(): Promise<void> {
    this.loading ??= this.track(async () => {
      try {
        for (const { destination, partitionKey } of await this.store.partitionKeys()) {
          const key = watchKey(destination, partitionKey);
          if (!this.keys.has(key)) this.keys.set(key, ++this.generation);
        }
        this.loaded = true;
        const pending = [...this.pending];
        this.pending.clear();
        for (const [key, sequence] of pending) if (this.keys.has(key)) this.mark(key, sequence);
      } catch (err) {
        this.lastLoadFailedAt = Date.now();
        this.log.warn(
          { table: this.store.tableName, err: errorMessage(err) },
          'could not read which partition keys have dead letters; replay may not warn about newer deliveries',
        );
      } finally {
        this.loading = undefined;
      }
    });
    return this.loading;
  }

  /** Resolves once no load or UPDATE is under way (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.work.size > 0) await Promise.all([...this.work]);
  }

  private track(fn: () => Promise<void>): Promise<void> {
    const p = fn().finally(() => this.work.delete(p));
    this.work.add(p);
    return p;
  }

  private readonly onConnected = (): void => {
    void this.load();
  };

  private readonly onDelivered = (payload: LifecycleEventMap['delivery:delivered']): void => {
    try {
      const partitionKey = stringExtension(payload.event, 'partitionkey');
      if (partitionKey === undefined) return;
      const key = watchKey(payload.destination, partitionKey);
      if (this.loaded) {
        if (!this.keys.has(key)) return;
      } else {
        if (!this.keys.has(key)) this.remember(key, payload.event);
        if (!this.loading && Date.now() - this.lastLoadFailedAt >= RELOAD_AFTER_MS) void this.load();
        if (!this.keys.has(key)) return;
      }
      const sequence = stringExtension(payload.event, 'sequence');
      if (sequence !== undefined) this.mark(key, sequence);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'newer-state tracking failed for a delivered event');
    }
  };

  private remember(key: string, event: CloudEvent<unknown>): void {
    const sequence = stringExtension(event, 'sequence');
    if (sequence === undefined) return;
    const known = this.pending.get(key);
    if (known !== undefined) {
      if (sequence > known) this.pending.set(key, sequence);
    } else if (this.pending.size < MAX_PENDING_KEYS) {
      this.pending.set(key, sequence);
    } else if (!this.pendingOverflowLogged) {
      this.pendingOverflowLogged = true;
      this.log.warn({ keys: MAX_PENDING_KEYS }, 'too many deliveries before the dead-letter keys were loaded; some newer states are not recorded');
    }
  }

  private mark(key: string, sequence: string): void {
    if (this.running.has(key)) {
      const queued = this.running.get(key);
      if (queued === undefined || sequence > queued) this.running.set(key, sequence);
      return;
    }
    this.running.set(key, undefined);
    void this.track(() => this.markLoop(key, sequence));
  }

  private async markLoop(key: string, first: string): Promise<void> {
    let sequence: string | undefined = first;
    try {
      while (sequence !== undefined) {
        const generation = this.keys.get(key);
        try {
          const { remaining } = await this.store.markSuperseded(splitKey(key), sequence);
          // No row left for the key: stop watching it, unless a new dead letter came meanwhile.
          if (!remaining && this.keys.get(key) === generation) this.keys.delete(key);
        } catch (err) {
          this.log.warn(
            { table: this.store.tableName, ...splitKey(key), sequence, err: errorMessage(err) },
            'could not record a newer delivery on dead letters of the same key; replay may not warn about it',
          );
        }
        sequence = this.running.get(key);
        this.running.set(key, undefined);
      }
    } finally {
      this.running.delete(key);
    }
  }
}

function stringExtension(event: CloudEvent<unknown>, name: string): string | undefined {
  const value = (event as unknown as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}
