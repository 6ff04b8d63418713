import type { Pool } from 'pg';
import type { Config } from '../config/types';
import type { Lifecycle } from '../lifecycle';
import type { Change, UndecodableChange } from './change';

/**
 * The contract every change source keeps (logical replication, src/sources/logical/; the
 * trigger-written journal, src/sources/journal/). A source reads changes in commit order and hands them to a `ChangeConsumer`; the
 * consumer answers through `SourceFeedback`: which position is done, and whether to pause.
 *
 *   source ──change/undecodable/commit/position──▶ consumer (the delivery engine; `tail`'s printer)
 *   source ◀──────acknowledge/setPressure───────── consumer
 */

/**
 * A point in a source's stream (logical: an LSN; a journal: its row id). What the acknowledgement
 * tracking (src/delivery/ack-tracker.ts) relies on:
 * - ordered: a later point compares greater with `>` (a bigint, so no allocation to compare);
 * - a position handed to `commit`/`position` covers every change handed over before it and none
 *   handed over after it;
 * - not necessarily strictly increasing: one may trail another already given (a keepalive behind
 *   a commit); the tracker never acknowledges backwards;
 * - durable meaning: after `acknowledge(p)` the source may forget everything up to `p`, and after a
 *   restart (or `reset`) it hands over again everything after the last position it was given.
 */
export type Position = bigint;

/**
 * What a source hands its ordered stream to. Calls arrive in stream order, synchronously from the
 * source's reading loop.
 */
export interface ChangeConsumer {
  change(change: Change): void;
  /** A change that could not be decoded: it takes its place in the order and is dead-lettered. */
  undecodable(change: UndecodableChange): void;
  /** The transaction ending at `end` has no more changes. */
  commit(end: Position): void;
  /**
   * A position between transactions (logical: a keepalive): nothing committed before it is still
   * to come, so it may be acknowledged once the work queued before it is done. This keeps the
   * source moving while captured tables are idle and others are busy.
   */
  position(position: Position): void;
  /**
   * A watermark this term's source was asked to write (`ChangeSource.writeWatermark`) reached the
   * stream at `position`, between two changes. The backfill (src/sources/backfill/) opens and
   * closes its chunk windows on them; what it relies on, which both sources keep:
   * - a change of a transaction visible to a snapshot taken before `writeWatermark` was called is
   *   handed over before this call (logical: it committed before the message in the WAL; trigger:
   *   it was in an earlier round, or earlier in id order in the watermark's round);
   * - a change handed over before `writeWatermark` was called belongs to a transaction visible to
   *   every snapshot taken after it resolved (with the chunk reader's check for commits written but
   *   not yet visible, src/sources/backfill/chunks.ts, in logical mode).
   * Not promised: that a change committed after the watermark's write comes after it. Logical mode
   * keeps that too; the journal does not (a round hands over in id order the transactions that
   * became visible between two snapshots), which is why the window keeps each transaction's keys
   * and asks the chunk's snapshot about them (docs/backfill.md, "Trigger mode").
   * `commitLsn`: where the watermark sits among the changes' `commitLsn` (trigger rules are chosen
   * by it): the position itself when left out (logical: the LSN); trigger mode: the journal row's id.
   */
  watermark?(token: string, position: Position, commitLsn?: bigint): void;
  /** The source restarts from its last acknowledged position: drop queued work that has not started. */
  reset(): Promise<void>;
  /**
   * Stop: take no more work and start no new attempt; attempts in flight may finish for up to
   * `graceMs` (default 0) and what they deliver is acknowledged; then everything not done is
   * abandoned, unacknowledged (the source hands it over again after a restart).
   */
  stop(graceMs?: number): Promise<void>;
}

/** What the consumer tells its source. Called by the consumer only. */
export interface SourceFeedback {
  /**
   * Everything up to `position` is delivered or dead-lettered: the source may confirm it (the
   * slot's flushed position). `idle`: nothing is pending after it, so confirm now, not on a timer.
   */
  acknowledge(position: Position, idle: boolean): void;
  /** The consumer's buffer is full (`true`: stop reading) or has room again (`false`). */
  setPressure(full: boolean): void;
}

export interface ChangeSource extends SourceFeedback {
  /**
   * Resolves once the source is open and reading (transient failures are retried meanwhile), or
   * at once when `stop()` is called first; rejects on a final error. `done` settles when the source
   * ends: resolved after `stop()`, rejected with the final error that ended it.
   */
  start(): Promise<{ done: Promise<void> }>;
  /**
   * Stop reading; let the consumer finish its sends in flight for up to `graceMs` (what they
   * deliver is acknowledged), abandon the rest, confirm the final position, close.
   */
  stop(graceMs?: number): Promise<void>;
  /**
   * Writes `token` into the stream, outside any user transaction's fate (logical: a
   * non-transactional logical message at the end of the WAL; trigger: a journal row of its own, in
   * its own transaction); the consumer's `watermark` is called when the stream reaches it, and no
   * change is handed over for it. Absent when the mode cannot (then backfill is refused).
   */
  writeWatermark?(token: string): Promise<void>;
}

/** What a source is built from (src/sources/index.ts picks the factory by `capture.mode`). */
export interface ChangeSourceOptions {
  config: Config;
  /** The pipeline's shared pool (the logical source writes its heartbeat through it). */
  pool: Pool;
  /** The source's own connections: its lookups never queue behind the shared pool's queries. */
  ownPool: Pool;
  consumer: ChangeConsumer;
  lifecycle: Lifecycle;
  /**
   * `tail`: read the changes committed from now on through a throw-away reader named so, without
   * touching the durable position (logical: a temporary slot) and without side effects.
   */
  preview?: string;
}

export type ChangeSourceFactory = (options: ChangeSourceOptions) => ChangeSource;
