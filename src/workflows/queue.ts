/**
 * The shared work stream of one workflow (docs/workflows.md, "Durable runs"): one entry per
 * scheduled instance, a pointer (session, instance) to the state, read by runners through a
 * consumer group. An entry stays pending until its runner acknowledges it; a runner that died
 * leaves it pending, and another takes it over with XAUTOCLAIM once it has been idle long enough.
 * Runners heartbeat their entries (XCLAIM to themselves) while a run lasts.
 */
import type Redis from 'ioredis';

export interface WorkPointer {
  session: string;
  instance: string;
}

export interface WorkEntry extends WorkPointer {
  /** The stream entry id: the run's claim on the instance (start_run.lua). */
  id: string;
}

type StreamEntry = [id: string, fields: string[]];

function toEntry([id, fields]: StreamEntry): WorkEntry | undefined {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < (fields ?? []).length; i += 2) record[fields[i]] = fields[i + 1];
  return record.session === undefined || record.instance === undefined ? undefined : { id, session: record.session, instance: record.instance };
}

export class WorkQueue {
  constructor(
    private readonly redis: Redis,
    readonly key: string,
    readonly group: string,
  ) {}

  /** Creates the group (reading from the stream's start: pointers may predate it) unless it exists. */
  async ensureGroup(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.key, this.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) throw err;
    }
  }

  async add(pointers: readonly WorkPointer[]): Promise<void> {
    if (pointers.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const p of pointers) pipeline.xadd(this.key, '*', 'session', p.session, 'instance', p.instance);
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
  }

  /** New entries for `consumer` (blocking up to blockMs when given and there are none). */
  async read(consumer: string, count: number, blockMs?: number): Promise<WorkEntry[]> {
    const args: (string | number)[] = ['GROUP', this.group, consumer, 'COUNT', count];
    if (blockMs !== undefined) args.push('BLOCK', blockMs);
    args.push('STREAMS', this.key, '>');
    const reply = (await this.redis.call('XREADGROUP', ...args)) as [string, StreamEntry[]][] | null;
    return this.entries(reply?.[0]?.[1] ?? []);
  }

  /** Entries delivered to `consumer` and not acknowledged (a restarted runner of the same name). */
  async ownPending(consumer: string, count: number): Promise<WorkEntry[]> {
    const reply = (await this.redis.call('XREADGROUP', 'GROUP', this.group, consumer, 'COUNT', count, 'STREAMS', this.key, '0')) as
      | [string, StreamEntry[]][]
      | null;
    return this.entries(reply?.[0]?.[1] ?? []);
  }

  /**
   * Entries idle for at least minIdleMs (their runner stopped heartbeating), now `consumer`'s.
   * Returns the cursor to continue from ('0-0': the pending list was scanned to its end).
   */
  async reclaim(consumer: string, minIdleMs: number, count: number, cursor = '0-0'): Promise<{ cursor: string; entries: WorkEntry[] }> {
    const [next, raw] = (await this.redis.call('XAUTOCLAIM', this.key, this.group, consumer, minIdleMs, cursor, 'COUNT', count)) as [string, StreamEntry[]];
    return { cursor: next, entries: await this.entries(raw) };
  }

  /** Resets the idle time of entries `consumer` is working on, so that nobody reclaims them. */
  async heartbeat(consumer: string, ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.redis.call('XCLAIM', this.key, this.group, consumer, 0, ...ids, 'JUSTID');
  }

  /** Acknowledged and removed: the stream holds only work not done yet. */
  async done(id: string): Promise<void> {
    await this.redis.multi().xack(this.key, this.group, id).xdel(this.key, id).exec();
  }

  async pendingCount(): Promise<number> {
    const summary = (await this.redis.call('XPENDING', this.key, this.group)) as [number, ...unknown[]];
    return Number(summary[0]);
  }

  /** Entries that are not pointers (or were deleted while pending: nil fields) are dropped. */
  private async entries(raw: StreamEntry[]): Promise<WorkEntry[]> {
    const out: WorkEntry[] = [];
    for (const item of raw) {
      const entry = item && item[1] ? toEntry(item) : undefined;
      if (entry) out.push(entry);
      else if (item) await this.done(item[0]);
    }
    return out;
  }
}
