import { join } from 'node:path';
import type { Knex } from 'knex';
import type { Client, Pool } from 'pg';
import type { Config } from '../../config/types';
import { ErrorCodes, PgceError, errorMessage } from '../../errors';
import type { Lifecycle } from '../../lifecycle';
import { logger } from '../../logger';
import { quoteIdent, quoteTable } from '../../pg/catalog-sql';
import { isRetriableDbError } from '../../pg/db-errors';
import { createKnex } from '../../pg/schema/knex';
import { loadSql, withIdentifiers } from '../../pg/sql-file';
import { TypeRegistry } from '../../pg/types-registry';
import { Backoff, sleep } from '../../retry';
import type { Change, RelationInfo, Row, UndecodableChange } from '../change';
import type { ChangeConsumer, ChangeSource } from '../contract';
import { journalNames, type JournalNames } from './names';
import { Relations } from './relations';
import { journalRow, parseJournalRow } from './rows';

const SQL_DIR = join(__dirname, 'sql');
const READ_SQL = loadSql(SQL_DIR, 'journal-read.sql');
const SNAPSHOT_SQL = loadSql(SQL_DIR, 'journal-snapshot.sql');
const DELETE_SQL = loadSql(SQL_DIR, 'journal-delete.sql');
const WATERMARK_SQL = loadSql(SQL_DIR, 'journal-watermark.sql');

/** A snapshot in which no transaction is visible yet: the first round reads every row still there. */
export const NOTHING_SEEN = '1:1:';

/** Acknowledged rows are deleted in one statement at most this often while busy (at once when idle). */
const DELETE_INTERVAL_MS = 200;

export interface JournalSourceOptions {
  config: Config;
  /** The source's own connection(s): reads and deletes. */
  pool: Pool;
  consumer: ChangeConsumer;
  lifecycle: Lifecycle;
  /** `tail`: read what commits from now on, delete nothing. */
  preview?: string;
}

interface JournalRecord {
  id: string;
  txid: string;
  relid: number;
  /** W: a backfill's watermark (no table: relid 0, the token in new_row), never a change. */
  op: 'I' | 'U' | 'D' | 'T' | 'W';
  old_row: string | null;
  new_row: string | null;
  written_at: Date;
}

/**
 * `capture.mode: trigger` (README "Capture modes"; docs/journal.md): reads the journal the
 * capture's triggers write, in rounds. A round is bounded by two snapshots of the reader, the
 * previous and the current one: it hands over, in id order and in pages of capture.batchSize, the
 * rows of the transactions that committed in between (invisible in the previous snapshot,
 * visible in the current one). Nothing is skipped, however late a transaction commits, and a row's
 * successive changes come in their order (docs/journal.md, "Why the cursor is safe").
 *
 * Each row is a transaction of its own for the consumer: its position is the count of rows handed
 * over (ordered in hand-over order, which id order is not across rounds); acknowledging a position
 * deletes the rows handed over up to it. A restart reads every row still there, so a change is
 * delivered at least once. A NOTIFY on the capture's channel starts a round at once; a round also
 * starts every capture.pollInterval, so a lost notification delays a change by that at most.
 */
export class JournalSource implements ChangeSource {
  private readonly log = logger('capture');
  private readonly names: JournalNames;
  private readonly registry = new TypeRegistry();
  private readonly relations: Relations;
  private readonly sql: { read: string; delete: string; watermark: string };
  /** The snapshot the last finished round read up to. */
  private previous = NOTHING_SEEN;
  /** The round in progress: its upper snapshot and the last id handed over in it. */
  private round?: { current: string; after: string };
  private handedOver = 0n;
  /** The largest id handed over, and the largest position acknowledged. */
  private largestHanded = 0n;
  private acknowledged = 0n;
  /** Rows handed over and not acknowledged yet, in hand-over order. */
  private handed: { position: bigint; id: string }[] = [];
  private toDelete: string[] = [];
  private deleteTimer?: NodeJS.Timeout;
  private deleting?: Promise<void>;
  private full = false;
  private stopping = false;
  private readonly stopSignal = new AbortController();
  private wakeUp?: () => void;
  private woken = false;
  private loopDone?: Promise<void>;
  private listenDone?: Promise<void>;
  private knex?: Knex;
  private listener?: Client;
  private connected = false;

  constructor(private readonly opts: JournalSourceOptions) {
    this.names = journalNames(opts.config);
    this.relations = new Relations(opts.pool, this.registry);
    const journal = quoteTable(this.names.schema.schema, this.names.schema.journal);
    this.sql = {
      read: withIdentifiers(READ_SQL, { journal }), delete: withIdentifiers(DELETE_SQL, { journal }), watermark: withIdentifiers(WATERMARK_SQL, { journal }),
    };
  }

  async start(): Promise<{ done: Promise<void> }> {
    if (this.stopping) return { done: Promise.resolve() };
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    this.listenDone = this.listenLoop();
    this.loopDone = this.readLoop(opened);
    await Promise.race([open, this.loopDone]);
    return { done: this.loopDone };
  }

  acknowledge(position: bigint, idle: boolean): void {
    while (this.handed.length && this.handed[0].position <= position) this.toDelete.push(this.handed.shift()!.id);
    if (this.opts.preview || !this.toDelete.length) return;
    if (position > this.acknowledged) this.acknowledged = position;
    if (idle) void this.flushDeletes();
    else this.deleteTimer ??= setTimeout(() => {
      this.deleteTimer = undefined;
      void this.flushDeletes();
    }, DELETE_INTERVAL_MS);
  }

  /**
   * A backfill's watermark: a journal row of its own (op W), written in its own short transaction
   * on the source's connections; `consumer.watermark` is called when the rounds reach it, at its
   * place in hand-over order (docs/journal.md, "Watermarks"). A round starts at once rather than
   * at the next NOTIFY or poll.
   */
  async writeWatermark(token: string): Promise<void> {
    await this.opts.pool.query(this.sql.watermark, [this.names.capture, token]);
    this.wake();
  }

  setPressure(full: boolean): void {
    this.full = full;
    if (!full) this.wake();
  }

  async stop(graceMs = 0): Promise<void> {
    this.stopping = true;
    this.stopSignal.abort();
    this.wake();
    await this.opts.consumer.stop(graceMs);
    clearTimeout(this.deleteTimer);
    // What the grace period delivered is deleted now; the rest is read again after a restart.
    await this.flushDeletes();
    await this.loopDone?.catch(() => undefined);
    await this.closeListener();
    await this.listenDone;
    await this.knex?.destroy().catch(() => undefined);
  }

  private wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Until a NOTIFY, setPressure(false), stop() or `ms`. */
  private async waitForWake(ms: number): Promise<void> {
    if (this.woken) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.wakeUp = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.wakeUp = undefined;
  }

  /**
   * Rounds until stop(); a database that goes away is retried with backoff (capture.reconnectDelay
   * doubling up to capture.reconnectMax) from where the rounds were: nothing to reset, since the
   * snapshots and what was handed over stay valid across connections.
   */
  private async readLoop(opened: () => void): Promise<void> {
    const { capture, tables } = this.opts.config;
    const backoff = new Backoff({ kind: 'exponential', delayMs: capture.reconnectDelayMs, maxMs: capture.reconnectMaxMs });
    let preloaded = false;
    while (!this.stopping) {
      if (this.full) {
        this.woken = false;
        await this.waitForWake(capture.pollIntervalMs);
        continue;
      }
      try {
        if (!preloaded) {
          await this.relations.preload(tables);
          // tail: only what commits from now on.
          if (this.opts.preview) this.previous = await this.snapshot();
          preloaded = true;
        }
        this.woken = false;
        const handed = await this.readRound();
        if (!this.connected) {
          this.connected = true;
          this.opts.lifecycle.emit('capture:connected', { slot: this.names.capture, publication: this.names.channel, startLsn: 0n });
          opened();
        }
        backoff.reset();
        if (!handed) await this.waitForWake(capture.pollIntervalMs);
      } catch (err) {
        if (this.stopping) return;
        const error = journalError(err);
        if (!error.retriable) {
          this.log.error({ err: errorMessage(error), code: error.code }, 'capture failed');
          throw error;
        }
        this.connected = false;
        const delay = backoff.next();
        this.opts.lifecycle.emit('capture:disconnected', { error, retryInMs: delay });
        this.log.warn({ err: errorMessage(error), retryInMs: delay }, 'reading the journal failed; retrying');
        await sleep(delay, this.stopSignal.signal).catch(() => undefined);
      }
    }
  }

  private async snapshot(): Promise<string> {
    return (await this.opts.pool.query(SNAPSHOT_SQL)).rows[0].snapshot;
  }

  /** One round (or what is left of it after backpressure paused it). True when rows were handed over. */
  private async readRound(): Promise<boolean> {
    const { batchSize } = this.opts.config.capture;
    this.round ??= { current: await this.snapshot(), after: '0' };
    let handed = false;
    while (!this.stopping && !this.full) {
      const round = this.round;
      const { rows } = await this.opts.pool.query(this.sql.read, [this.names.capture, this.previous, round.current, round.after, batchSize]);
      await this.describeTables(rows as JournalRecord[]);
      if (this.stopping) return handed;
      for (const row of rows as JournalRecord[]) this.handOver(row);
      if (rows.length) {
        handed = true;
        round.after = (rows[rows.length - 1] as JournalRecord).id;
      }
      if (rows.length < batchSize) {
        this.previous = round.current;
        this.round = undefined;
        return handed;
      }
    }
    return handed;
  }

  /** Describes, before a page is handed over, the tables it names that are new or changed. */
  private async describeTables(rows: JournalRecord[]): Promise<void> {
    const stale = new Set<number>();
    for (const row of rows) {
      if (row.op === WATERMARK || stale.has(row.relid)) continue;
      const members = memberNames(row);
      if (!this.relations.get(row.relid, members)) stale.add(row.relid);
    }
    for (const relid of stale) {
      const relation = await this.relations.describe(relid);
      if (!relation) {
        throw new PgceError(ErrorCodes.JOURNAL, `the journal holds changes of table OID ${relid}, which no longer exists; they cannot be described`, { detail: { relid } });
      }
    }
  }

  private handOver(row: JournalRecord): void {
    const consumer = this.opts.consumer;
    const position = ++this.handedOver;
    const id = BigInt(row.id);
    if (id > this.largestHanded) this.largestHanded = id;
    if (row.op === WATERMARK) {
      // No change: the consumer learns where the watermark is in the order, then the position,
      // so acknowledging it deletes the row like any other (tokens not ours are ignored there).
      this.handed.push({ position, id: row.id });
      consumer.watermark?.(watermarkToken(row), position, id);
      consumer.position(position);
      return;
    }
    const relation = this.relations.get(row.relid)!;
    // The event id comes from the journal row's id: the same on every redelivery of the row.
    const base = {
      relation, commitLsn: id, commitTime: row.written_at, xid: Number(BigInt(row.txid) & 0xffffffffn), ordinal: 0,
    };
    const kind = KIND[row.op];
    if (!kind) throw new PgceError(ErrorCodes.JOURNAL, `journal row ${row.id} has an unknown operation ${JSON.stringify(row.op)}`);
    let change: Change | undefined;
    try {
      change = this.change(row, relation, base, kind);
    } catch (err) {
      const raw: Record<string, unknown> = {};
      if (row.new_row !== null) raw.new = row.new_row;
      if (row.old_row !== null) raw.old = row.old_row;
      const undecodable: UndecodableChange = { ...base, kind, raw, error: err instanceof Error ? err : new Error(String(err)) };
      this.handed.push({ position, id: row.id });
      consumer.undecodable(undecodable);
      consumer.commit(position);
      return;
    }
    this.handed.push({ position, id: row.id });
    this.opts.lifecycle.emit('capture:change', { change });
    consumer.change(change);
    consumer.commit(position);
  }

  /**
   * The change as logical mode makes it of the same row change: the old row follows the table's
   * replica identity (whole with FULL; otherwise its key, on a delete, or on an update that
   * changed the key), though the journal always has the whole old row.
   */
  private change(row: JournalRecord, relation: RelationInfo, base: Omit<Change, 'kind'> & { relation: RelationInfo }, kind: Change['kind']): Change {
    const decode = (json: string | null): Row | undefined => (json === null ? undefined : journalRow(relation, parseJournalRow(json), this.registry));
    const full = relation.replicaIdentity === 'full';
    switch (kind) {
      case 'insert':
        return { ...base, kind, new: required(decode(row.new_row), row), missingColumns: [] };
      case 'update': {
        const next = required(decode(row.new_row), row);
        const previous = decode(row.old_row);
        if (full) return { ...base, kind, new: next, old: previous, oldIsKeyOnly: false, missingColumns: [] };
        const keyChanged = previous !== undefined && relation.keyColumns.some((k) => JSON.stringify(previous[k]) !== JSON.stringify(next[k]));
        return { ...base, kind, new: next, old: keyChanged ? pick(previous!, relation.keyColumns) : undefined, oldIsKeyOnly: true, missingColumns: [] };
      }
      case 'delete': {
        const previous = required(decode(row.old_row), row);
        return full
          ? { ...base, kind, old: previous, oldIsKeyOnly: false, missingColumns: [] }
          : { ...base, kind, old: pick(previous, relation.keyColumns), oldIsKeyOnly: true, missingColumns: [] };
      }
      default:
        // A trigger does not see TRUNCATE's CASCADE or RESTART IDENTITY: each truncated table has its row.
        return { ...base, kind: 'truncate', cascade: false, restartIdentity: false };
    }
  }

  /** Deletes the acknowledged rows; a failure puts them back for the next try (they are only re-read after a restart). */
  private flushDeletes(): Promise<void> {
    if (this.deleting) return this.deleting.then(() => this.flushDeletes());
    if (this.opts.preview || !this.toDelete.length) return Promise.resolve();
    clearTimeout(this.deleteTimer);
    this.deleteTimer = undefined;
    // Here rather than per acknowledgement: `through` scans the rows in flight.
    this.opts.lifecycle.emit('capture:acknowledged', { lsn: this.acknowledged, through: this.doneThrough() });
    const ids = this.toDelete;
    this.toDelete = [];
    this.deleting = this.opts.pool.query(this.sql.delete, [ids]).then(
      () => undefined,
      (err) => {
        this.toDelete.unshift(...ids);
        this.log.warn({ err: errorMessage(err), rows: ids.length }, 'deleting delivered journal rows failed; trying again');
        if (!this.stopping) this.deleteTimer ??= setTimeout(() => {
          this.deleteTimer = undefined;
          void this.flushDeletes();
        }, this.opts.config.capture.reconnectDelayMs);
      },
    ).finally(() => (this.deleting = undefined));
    return this.deleting;
  }

  /**
   * The largest id at or below which every row handed over is done (trigger rules retire the rule
   * sets before it): one less than the smallest id in flight. Ids are not in hand-over order, so
   * the rows in flight are scanned (at most every DELETE_INTERVAL_MS). A transaction committing
   * late may still hand over a smaller id; it meets the oldest rule set kept.
   */
  private doneThrough(): bigint {
    let smallest = this.largestHanded + 1n;
    for (const { id } of this.handed) {
      const n = BigInt(id);
      if (n < smallest) smallest = n;
    }
    return smallest - 1n;
  }

  // --- the wake-up: LISTEN on a dedicated knex connection -----------------------------------

  /** One listening connection at a time, reconnected with backoff; each (re)connection starts a round. */
  private async listenLoop(): Promise<void> {
    const { capture } = this.opts.config;
    const backoff = new Backoff({ kind: 'exponential', delayMs: capture.reconnectDelayMs, maxMs: capture.reconnectMaxMs });
    this.knex = createKnex(this.opts.config);
    const raw = this.knex.client as { acquireRawConnection(): Promise<Client>; destroyRawConnection(c: Client): Promise<void> };
    while (!this.stopping) {
      let lost: Promise<unknown> | undefined;
      try {
        const client = await raw.acquireRawConnection();
        this.listener = client;
        lost = new Promise((resolve) => {
          client.on('error', (err: Error) => resolve(err));
          client.on('end', () => resolve(undefined));
        });
        client.on('notification', () => this.wake());
        await client.query(`LISTEN ${quoteIdent(this.names.channel)}`);
        if (this.stopping) break;
        backoff.reset();
        // Changes committed while nobody listened: a round now.
        this.wake();
        const why = await Promise.race([lost, sleepUntilStopped(this.stopSignal.signal)]);
        if (this.stopping) break;
        this.log.warn({ err: why instanceof Error ? errorMessage(why) : 'connection ended' }, 'the journal listener connection was lost; the poll goes on meanwhile');
      } catch (err) {
        if (this.stopping) break;
        this.log.warn({ err: errorMessage(err) }, 'could not LISTEN for journal wake-ups; the poll goes on meanwhile');
      }
      await this.closeListener();
      await sleep(backoff.next(), this.stopSignal.signal).catch(() => undefined);
    }
    await this.closeListener();
  }

  private async closeListener(): Promise<void> {
    const client = this.listener;
    this.listener = undefined;
    if (!client) return;
    client.removeAllListeners('notification');
    client.on('error', () => undefined);
    await (this.knex!.client as { destroyRawConnection(c: Client): Promise<void> }).destroyRawConnection(client).catch(() => undefined);
  }
}

const KIND: Record<string, Change['kind']> = { I: 'insert', U: 'update', D: 'delete', T: 'truncate' };
const WATERMARK = 'W';

function watermarkToken(row: JournalRecord): string {
  const token: unknown = row.new_row === null ? null : JSON.parse(row.new_row);
  if (typeof token !== 'string') throw new PgceError(ErrorCodes.JOURNAL, `journal row ${row.id} is a watermark without its token`);
  return token;
}

function memberNames(row: JournalRecord): string[] {
  const json = row.new_row ?? row.old_row;
  return json === null ? [] : Object.keys(parseJournalRow(json));
}

function required(row: Row | undefined, record: JournalRecord): Row {
  if (!row) throw new PgceError(ErrorCodes.JOURNAL, `journal row ${record.id} (${record.op}) lacks its row`);
  return row;
}

function pick(row: Row, keys: readonly string[]): Row {
  const out: Row = {};
  for (const k of keys) if (k in row) out[k] = row[k];
  return out;
}

function sleepUntilStopped(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** The database unavailable: retried; anything else (the journal dropped, a bug) stops capture. */
function journalError(err: unknown): PgceError {
  if (err instanceof PgceError) return err;
  const what = `reading the journal: ${errorMessage(err)}`;
  if (isRetriableDbError(err, 'query')) return new PgceError(ErrorCodes.JOURNAL, what, { retriable: true, cause: err });
  return new PgceError(ErrorCodes.JOURNAL, what, { cause: err });
}
