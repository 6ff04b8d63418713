import type { CloudEvent } from 'cloudevents';

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

/**
 * Approximate memory an event holds: its `data` as JSON text plus the main attributes. The JSON
 * length (UTF-16 units) is a proxy of the heap it occupies, good enough for a budget; computing it
 * once per event, when the change arrives, keeps `remove` exact.
 */
export function estimateEventBytes(event: CloudEvent<unknown>): number {
  let bytes = EVENT_OVERHEAD_BYTES + event.id.length + event.source.length + event.type.length;
  if (event.subject) bytes += event.subject.length;
  const data = event.data ?? event.data_base64;
  if (data !== undefined) {
    try {
      bytes += typeof data === 'string' ? data.length : (JSON.stringify(data)?.length ?? 0);
    } catch {
      // Not JSON-serialisable (the sink will say so): count the overhead only.
    }
  }
  return bytes;
}
