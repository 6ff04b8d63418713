import { randomBytes } from 'node:crypto';
import type { Change, InsertChange, RelationInfo, Row, UndecodableChange } from '../change';
import type { ChangeConsumer, Position } from '../contract';
import { backfillEventId, keyText } from './keys';
import type { SnapshotVisibility } from './snapshot';

/**
 * The DBLog window (docs/backfill.md): a ChangeConsumer around the delivery engine that passes
 * every call through and, while a chunk is open, watches the live changes of the chunk's table.
 *
 *   arm ─ … ─ low watermark ─ (chunk SELECT) ─ high watermark
 *
 * - between the low and the high watermark, a live change of a row removes that row's key from
 *   the chunk: the live event carries the row as new as (or newer than) what the SELECT read;
 * - between arming and the low watermark, the keys each transaction touched are kept: a
 *   transaction met before the low watermark yet not visible to the chunk's snapshot has its keys
 *   removed too, else the chunk would carry the row older than that live change (logical: PostgreSQL
 *   makes a commit visible a moment after writing it to the WAL; trigger: a round hands over in id
 *   order, so a transaction that committed after the snapshot may precede the watermark);
 * - a truncate or a change of the table's columns anywhere in the window, or a restart of the
 *   stream (`reset`), abandons the chunk: the coordinator reads it again;
 * - at the high watermark what remains goes to the engine as inserts at the watermark's position
 *   (after every live change committed before it, before every one committed after it), then
 *   that position, so the acknowledgement covers them.
 */

/** What the coordinator asks of one chunk. */
export interface ChunkPlan {
  backfillId: string;
  chunkNo: number;
  relation: RelationInfo;
}

/** The chunk as read: rows decoded like a live insert's, the snapshot they were read in. */
export interface ChunkRows {
  rows: Row[];
  snapshot: SnapshotVisibility;
  /** When the chunk was read: the backfill events' `time`. */
  readAt: Date;
}

export type ChunkOutcome =
  | { kind: 'emitted'; position: Position; epoch: number; read: number; emitted: number; superseded: number }
  | { kind: 'redo'; reason: string };

/** More keys than this kept between arming and the low watermark (a lagging stream): the chunk is read again. */
export const MAX_PRE_WINDOW_KEYS = 200_000;

type Phase = 'armed' | 'open';

class OpenChunk {
  phase: Phase = 'armed';
  /** Keys touched by each transaction between arming and the low watermark (xid → keys). */
  readonly before = new Map<number, Set<string>>();
  beforeCount = 0;
  /** Keys touched between the low and the high watermark. */
  readonly during = new Set<string>();
  /** Why the chunk must be read again, once known. */
  redo: string | undefined;
  rows: ChunkRows | undefined;
  readonly table: string;
  readonly columns: string;
  resolve!: (outcome: ChunkOutcome) => void;
  readonly outcome = new Promise<ChunkOutcome>((resolve) => (this.resolve = resolve));

  constructor(readonly plan: ChunkPlan, readonly low: string, readonly high: string) {
    this.table = `${plan.relation.schema}.${plan.relation.table}`;
    this.columns = columnsSignature(plan.relation);
  }

  touch(change: Change): void {
    if (change.kind === 'message') return;
    const { relation } = change;
    if (`${relation.schema}.${relation.table}` !== this.table) return;
    if (change.kind === 'truncate') return this.abandon(`${this.table} was truncated`);
    if (change.kind === 'schema' || columnsSignature(relation) !== this.columns) return this.abandon(`the columns of ${this.table} changed`);
    const keys = this.plan.relation.keyColumns;
    const touched: string[] = [];
    if (change.kind === 'insert' || change.kind === 'update') touched.push(keyText(change.new, keys));
    if ((change.kind === 'update' && change.old) || change.kind === 'delete') touched.push(keyText(change.old!, keys));
    if (this.phase === 'open') {
      for (const k of touched) this.during.add(k);
      return;
    }
    let set = this.before.get(change.xid);
    if (!set) this.before.set(change.xid, set = new Set());
    for (const k of touched) set.add(k);
    this.beforeCount += touched.length;
    if (this.beforeCount > MAX_PRE_WINDOW_KEYS) this.abandon(`more than ${MAX_PRE_WINDOW_KEYS} changes of ${this.table} were waiting in the stream`);
  }

  /** An undecodable change of the table: its key is unknown, so no row of the chunk can be trusted. */
  touchUndecodable(change: UndecodableChange): void {
    const r = change.relation;
    if (r && `${r.schema}.${r.table}` === this.table) this.abandon(`a change of ${this.table} could not be decoded`);
  }

  abandon(reason: string): void {
    this.redo ??= reason;
    this.before.clear();
    this.during.clear();
  }
}

export class BackfillWindow implements ChangeConsumer {
  /** Unguessable per term: watermarks of another pipeline or an earlier term are not ours. */
  private readonly nonce = randomBytes(12).toString('hex');
  private chunk: OpenChunk | undefined;
  /** Counts stream restarts: an acknowledgement counts for a chunk only in the epoch it was emitted in. */
  private epochNo = 0;
  private acked: Position = -1n;
  private ackWaiters: { position: Position; epoch: number; resolve: (ok: boolean) => void }[] = [];

  constructor(private readonly inner: ChangeConsumer) {}

  get epoch(): number {
    return this.epochNo;
  }

  /**
   * Starts watching for a chunk; returns the two watermark tokens to write (low before the
   * SELECT, high after `supply`) and the chunk's outcome, settled at the high watermark or when
   * the chunk is abandoned. One chunk at a time.
   */
  arm(plan: ChunkPlan): { low: string; high: string; outcome: Promise<ChunkOutcome> } {
    this.cancel('a new chunk was armed');
    const base = `${this.nonce}:${plan.backfillId}:${plan.chunkNo}`;
    const chunk = new OpenChunk(plan, `${base}:low`, `${base}:high`);
    this.chunk = chunk;
    return { low: chunk.low, high: chunk.high, outcome: chunk.outcome };
  }

  /** The chunk's rows, read after its low watermark was written and before its high one is. */
  supply(rows: ChunkRows): void {
    if (this.chunk) this.chunk.rows = rows;
  }

  /** Gives up the open chunk (the coordinator stops, or its high watermark never came). */
  cancel(reason: string): void {
    const chunk = this.chunk;
    if (!chunk) return;
    this.chunk = undefined;
    chunk.resolve({ kind: 'redo', reason });
  }

  /**
   * The engine acknowledged `position` (tee of its feedback): chunks emitted in this epoch at or
   * before it are delivered.
   */
  acknowledged(position: Position): void {
    if (position > this.acked) this.acked = position;
    if (!this.ackWaiters.length) return;
    this.ackWaiters = this.ackWaiters.filter((w) => {
      if (w.epoch !== this.epochNo || position < w.position) return true;
      w.resolve(true);
      return false;
    });
  }

  /**
   * Resolves true once `position` (a chunk's high watermark, emitted in `epoch`) is acknowledged,
   * false when the stream restarted first (the engine dropped what it held: read the chunk again).
   */
  delivered(position: Position, epoch: number): Promise<boolean> {
    if (epoch !== this.epochNo) return Promise.resolve(false);
    if (this.acked >= position) return Promise.resolve(true);
    return new Promise((resolve) => this.ackWaiters.push({ position, epoch, resolve }));
  }

  // --- ChangeConsumer: everything passes through ---

  change(change: Change): void {
    this.chunk?.touch(change);
    this.inner.change(change);
  }

  undecodable(change: UndecodableChange): void {
    this.chunk?.touchUndecodable(change);
    this.inner.undecodable(change);
  }

  commit(end: Position): void {
    this.inner.commit(end);
  }

  position(position: Position): void {
    this.inner.position(position);
  }

  watermark(token: string, position: Position, commitLsn: bigint = position): void {
    this.inner.watermark?.(token, position, commitLsn);
    const chunk = this.chunk;
    if (!chunk) return;
    if (token === chunk.low && chunk.phase === 'armed') {
      chunk.phase = 'open';
    } else if (token === chunk.high && chunk.phase === 'open') {
      this.chunk = undefined;
      chunk.resolve(this.close(chunk, position, commitLsn));
    }
  }

  async reset(): Promise<void> {
    // First: an acknowledgement from now on belongs to the new stream, not to a chunk handed over before.
    this.epochNo++;
    this.cancel('the change stream restarted');
    for (const w of this.ackWaiters.splice(0)) w.resolve(false);
    await this.inner.reset();
  }

  async stop(graceMs?: number): Promise<void> {
    this.cancel('capture stopped');
    await this.inner.stop(graceMs);
    this.epochNo++;
    for (const w of this.ackWaiters.splice(0)) w.resolve(false);
  }

  /**
   * At the high watermark: what the window left of the chunk, handed to the engine at `position`;
   * the rows carry `commitLsn` (the watermark's place among the changes' own), so trigger rules
   * choose their rule set as for a live change met there.
   */
  private close(chunk: OpenChunk, position: Position, commitLsn: bigint): ChunkOutcome {
    if (chunk.redo !== undefined) {
      this.inner.position(position);
      return { kind: 'redo', reason: chunk.redo };
    }
    const read = chunk.rows;
    if (!read) {
      this.inner.position(position);
      return { kind: 'redo', reason: 'the high watermark came before the chunk was read' };
    }
    const { relation, backfillId } = chunk.plan;
    const drop = chunk.during;
    for (const [xid, keys] of chunk.before) {
      if (read.snapshot.invisible(xid)) for (const k of keys) drop.add(k);
    }
    let ordinal = 0;
    let superseded = 0;
    for (const row of read.rows) {
      const key = keyText(row, relation.keyColumns);
      if (drop.has(key)) {
        superseded++;
        continue;
      }
      const change: InsertChange = {
        kind: 'insert', relation, new: row, missingColumns: [],
        commitLsn, commitTime: read.readAt, xid: 0, ordinal: ordinal++,
        backfill: { id: backfillId, eventId: backfillEventId(backfillId, key) },
      };
      this.inner.change(change);
    }
    if (ordinal > 0) this.inner.commit(position);
    else this.inner.position(position);
    return { kind: 'emitted', position, epoch: this.epochNo, read: read.rows.length, emitted: ordinal, superseded };
  }
}

/** Column names and types: a live change in another shape than the chunk's means the table changed. */
function columnsSignature(relation: RelationInfo): string {
  return relation.columns.map((c) => `${c.name}:${c.typeOid}:${c.typeMod}`).join(',');
}
