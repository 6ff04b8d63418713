import type { CloudEvent } from 'cloudevents';
import type { Change } from '../sources/change';
import { primaryKeyText } from '../events/subject';
import { appEventPartitionKey } from '../events/app-event';

/**
 * Per-key queues for the delivery engine: events of one partition key wait in a linked queue
 * (no array shifting on the hot path), and keys that have work and are not busy wait in a FIFO of
 * ready keys, so picking the next send is O(1) and never scans all keys.
 */

/** Something a key queue can hold: it links to the next item of the same key. */
export interface Queued<T> {
  nextInKey: T | null;
}

export class KeyQueue<T extends Queued<T>> {
  head: T | null = null;
  private tail: T | null = null;
  /** A send holding this key's head is in flight: the key's next event must wait for it. */
  busy = false;
  /** In the ready list. */
  ready = false;
  nextReady: KeyQueue<T> | null = null;

  constructor(readonly key: string) {}

  push(item: T): void {
    item.nextInKey = null;
    if (this.tail) this.tail.nextInKey = item;
    else this.head = item;
    this.tail = item;
  }

  /** Moves up to `max` items from the front into `into` (in order); returns how many. */
  takeInto(into: T[], max: number): number {
    let n = 0;
    while (n < max && this.head) {
      const item = this.head;
      this.head = item.nextInKey;
      item.nextInKey = null;
      into.push(item);
      n++;
    }
    if (!this.head) this.tail = null;
    return n;
  }

  get empty(): boolean {
    return this.head === null;
  }
}

/** FIFO of keys that have queued events and no send in flight: round-robin across keys. */
export class ReadyList<T extends Queued<T>> {
  private head: KeyQueue<T> | null = null;
  private tail: KeyQueue<T> | null = null;

  push(queue: KeyQueue<T>): void {
    if (queue.ready) return;
    queue.ready = true;
    queue.nextReady = null;
    if (this.tail) this.tail.nextReady = queue;
    else this.head = queue;
    this.tail = queue;
  }

  shift(): KeyQueue<T> | undefined {
    const queue = this.head;
    if (!queue) return undefined;
    this.head = queue.nextReady;
    if (!this.head) this.tail = null;
    queue.nextReady = null;
    queue.ready = false;
    return queue;
  }

  get empty(): boolean {
    return this.head === null;
  }
}

/**
 * The key whose events must be delivered one after another: the event's `partitionkey` extension
 * (default format: `<app>.<model>/<primary key>`). The django-compatible format has no
 * `partitionkey` extension (it reproduces django-signals-cloudevents exactly), and a module handler
 * could drop it, so without it the key comes from the change itself: `<schema>.<table>/<primary
 * key>`, which keeps per-row order and still lets different rows go in parallel. A table without a
 * replica identity key (and a truncate) falls back to `<schema>.<table>`: its changes cannot be
 * told apart by row, so they go one after another per table.
 */
export function defaultPartitionKey(event: CloudEvent<unknown>, change: Change): string {
  const key = (event as unknown as Record<string, unknown>).partitionkey;
  if (typeof key === 'string' && key !== '') return key;
  if (change.kind === 'message') return appEventPartitionKey(change);
  const table = `${change.relation.schema}.${change.relation.table}`;
  const pk = primaryKeyText(change);
  return pk === undefined ? table : `${table}/${pk}`;
}
