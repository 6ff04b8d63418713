import type { CloudEvent } from 'cloudevents';
import type { Change, Row } from '../sources/change';
import { stringifyJson } from '../events/json-text';

/**
 * The delivery engine's memory budget: events received but not yet done, counted and sized. When
 * either limit is reached capture is asked to pause the replication socket (it keeps answering
 * keepalives on a timer); it resumes once both are below half, so the socket is not toggled on
 * every event (hysteresis).
 */
export class Budget {
  count = 0;
  bytes = 0;
  private full = false;

  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
    private readonly onPressure: (full: boolean) => void,
  ) {}

  add(bytes: number): void {
    this.count++;
    this.bytes += bytes;
    if (!this.full && (this.count >= this.maxCount || this.bytes >= this.maxBytes)) this.set(true);
  }

  remove(bytes: number): void {
    this.count--;
    this.bytes -= bytes;
    if (this.full && this.count < this.maxCount / 2 && this.bytes < this.maxBytes / 2) this.set(false);
  }

  /** Everything buffered was dropped (stream restart, stop). */
  clear(): void {
    this.count = 0;
    this.bytes = 0;
    this.set(false);
  }

  get pressured(): boolean {
    return this.full;
  }

  private set(full: boolean): void {
    if (this.full === full) return;
    this.full = full;
    this.onPressure(full);
  }
}

/**
 * How many events may wait in memory. Each in-flight slot should find its next send already
 * queued when it frees (otherwise the sink idles while capture resumes the socket), which takes a
 * few events per slot — 16, or two full batches in batch mode. The floor of 1024 keeps the
 * pause/resume toggling of the socket rare when `maxInFlight` is small, and costs little: a
 * typical row event is well under 1 KiB, and `maxBufferBytes` caps wide rows anyway.
 * Default maxInFlight 64 → 1024 events.
 */
export function eventCountLimit(maxInFlight: number, batchSize: number): number {
  return Math.max(1024, maxInFlight * Math.max(16, 2 * batchSize));
}

/** Attributes, object headers and the event's place in the queues, roughly. */
const EVENT_OVERHEAD_BYTES = 256;
/** A number, boolean or null, and the per-member cost of a row object, roughly. */
const SCALAR_BYTES = 8;

/**
 * Approximate memory an event holds: the main attributes plus the change's rows, sized member by
 * member (names and string lengths; JSON text only for json/array values). It is a budget, not an
 * exact count, and it must stay cheap: serialising `data` here doubled the JSON work on the hot
 * path, since the sink serialises it again to send. Computed once per event, when the change
 * arrives, so `remove` is exact.
 */
export function estimateEventBytes(change: Change, event: CloudEvent<unknown>): number {
  let bytes = EVENT_OVERHEAD_BYTES + event.id.length + event.source.length + event.type.length;
  if (event.subject) bytes += event.subject.length;
  if (change.kind === 'schema') {
    for (const c of change.oldColumns.concat(change.newColumns)) bytes += c.name.length + c.type.length + 2 * SCALAR_BYTES;
  } else if (change.kind === 'message') {
    // Its data is one JSON value: its size is not known without serialising it; count a row's worth.
    bytes += SCALAR_BYTES * 8;
  } else if (change.kind !== 'truncate') {
    bytes += rowBytes(change.kind === 'delete' ? change.old : change.new);
    if (change.kind === 'update' && change.old) bytes += rowBytes(change.old);
  }
  return bytes;
}

function rowBytes(row: Row): number {
  let bytes = 0;
  for (const name in row) bytes += name.length + SCALAR_BYTES + valueBytes(row[name]);
  return bytes;
}

function valueBytes(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (value === null || typeof value !== 'object') return SCALAR_BYTES;
  try {
    // stringifyJson: a json value's long number (RawJson) counts by its digits, not as `null`.
    return stringifyJson(value)?.length ?? SCALAR_BYTES;
  } catch {
    return SCALAR_BYTES;
  }
}
