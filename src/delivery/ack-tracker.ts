import type { Position } from '../sources/contract';

/**
 * Which stream position may be acknowledged, given changes that finish out of order.
 *
 * The stream is a sequence of changes with markers (positions: commit ends, and positions between
 * transactions such as keepalives; src/sources/contract.ts says what a position must satisfy)
 * between them. A marker may be acknowledged once every change that arrived before it is done
 * (delivered or dead-lettered). Only *undone* changes are kept, in arrival order, in a doubly
 * linked list; each carries `after`, the highest marker that arrived after it and before the next
 * undone change. When a change finishes it leaves the list in O(1):
 *   - at the head: everything before and up to the next undone change is done, so its `after`
 *     (if any) is acknowledged;
 *   - elsewhere: its `after` moves to its predecessor (a later marker wins), since the markers
 *     behind it now wait only for the predecessor.
 * Memory is therefore O(undone changes), with at most one marker per undone change, however many
 * done changes sit behind a stuck one — a transaction of 1,000,000 rows costs only what is still
 * in flight or queued, and a poison event does not make the structure grow with the stream.
 */
export class AckNode {
  /** Links in the tracker's list of undone changes; null at the ends. */
  prev: AckNode | null = null;
  next: AckNode | null = null;
  /** The highest marker between this change and the next undone one, when there is one. */
  after: Position | undefined = undefined;
  /** True while the tracker holds the node (between `track` and `done`). */
  tracked = false;
}

/** `idle`: no undone change is left, so nothing is pending after `position`. */
export type OnAcknowledge = (position: Position, idle: boolean) => void;

export class AckTracker<N extends AckNode = AckNode> {
  private head: N | null = null;
  private tail: N | null = null;
  private undone = 0;
  private markerCount = 0;
  private acked: Position | undefined;

  constructor(private readonly onAcknowledge: OnAcknowledge) {}

  /** A change arrived (in stream order); it is undone until `done(node)`. */
  track(node: N): void {
    node.prev = this.tail;
    node.next = null;
    node.after = undefined;
    node.tracked = true;
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    this.undone++;
  }

  /** A commit or keepalive position arrived (in stream order, after the changes tracked so far). */
  mark(position: Position): void {
    const tail = this.tail;
    if (!tail) {
      this.acknowledge(position, true);
      return;
    }
    if (tail.after === undefined) this.markerCount++;
    if (tail.after === undefined || position > tail.after) tail.after = position;
  }

  /** The change was delivered or dead-lettered. Calling it twice, or after `clear`, does nothing. */
  done(node: N): void {
    if (!node.tracked) return;
    node.tracked = false;
    const prev = node.prev as N | null;
    const next = node.next as N | null;
    if (next) next.prev = prev;
    else this.tail = prev;
    if (prev) prev.next = next;
    else this.head = next;
    node.prev = node.next = null;
    this.undone--;

    const after = node.after;
    node.after = undefined;
    if (after === undefined) return;
    if (!prev) {
      this.markerCount--;
      this.acknowledge(after, next === null);
    } else if (prev.after === undefined) {
      prev.after = after;
    } else {
      this.markerCount--;
      if (after > prev.after) prev.after = after;
    }
  }

  /** Forget everything (stream restart); what was acknowledged stays the floor. */
  clear(): void {
    for (let n = this.head; n; ) {
      const next = n.next as N | null;
      n.prev = n.next = null;
      n.after = undefined;
      n.tracked = false;
      n = next;
    }
    this.head = this.tail = null;
    this.undone = 0;
    this.markerCount = 0;
  }

  /** The oldest undone change. */
  oldest(): N | undefined {
    return this.head ?? undefined;
  }

  /** Undone changes held. */
  get pending(): number {
    return this.undone;
  }

  /** Markers held (at most one per undone change). */
  get markers(): number {
    return this.markerCount;
  }

  get acknowledged(): Position | undefined {
    return this.acked;
  }

  private acknowledge(position: Position, idle: boolean): void {
    // Never backwards: a keepalive position can trail a commit end already acknowledged.
    if (this.acked !== undefined && position <= this.acked) return;
    this.acked = position;
    this.onAcknowledge(position, idle);
  }
}
