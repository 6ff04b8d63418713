import type { Pool } from 'pg';
import type { Config, TableConfig } from '../../config/types';
import { ErrorCodes, PgceError, errorMessage } from '../../errors';
import type { Lifecycle } from '../../lifecycle';
import { logger } from '../../logger';
import type { AppEvent, Change, RelationInfo, TableChange, UndecodableChange } from '../change';
import { messagePrefix, parseAppEvent } from '../app-event';
import type { ChangeConsumer, ChangeSource } from '../contract';
import { parsePgOutput, type PgOutputMessage, type RelationMessage, type TupleData } from './pgoutput';
import { relationFromMessage, tupleToRow } from './rows';
import { isRetriableDbError } from '../../pg/db-errors';
import { ReplicationStream, type ReplicationStreamOptions } from './stream';
import { TypeRegistry } from '../../pg/types-registry';
import { Catalog } from '../../pg/catalog';
import { Backoff, sleep } from '../../retry';
import { TypeNames } from '../../pg/type-names';
import { SchemaHistory, schemaColumns } from './schema-changes';

export interface CaptureSourceOptions {
  config: Config;
  /** For catalog lookups only: capture's own, so that no other query can make it wait. */
  pool: Pool;
  consumer: ChangeConsumer;
  lifecycle: Lifecycle;
  /** `tail`: a throw-away slot created for this stream, gone when it closes. */
  temporarySlot?: string;
  /** Test seams: the replication stream and the catalog (default: the real ones on the database). */
  openStream?(options: ReplicationStreamOptions): CaptureStream;
  catalog?: CatalogLike;
  /** Test seam: type names for schema_change events (default: format_type on `pool`). */
  typeNames?: TypeNamesLike;
}

/** What capture uses of TypeNames (schema_change events' column types). */
export type TypeNamesLike = Pick<TypeNames, 'missing' | 'lookup' | 'name'>;

/** What capture uses of a replication stream (ReplicationStream; a fake in the unit tests). */
export type CaptureStream = Pick<
  ReplicationStream,
  'start' | 'stop' | 'acknowledge' | 'flush' | 'pause' | 'resume' | 'abort' | 'acknowledgedLsn' | 'ended' | 'streamed' | 'on'
>;

/** What capture uses of the catalog (Catalog). */
export type CatalogLike = Pick<Catalog, 'preload' | 'needsLookup' | 'lookup' | 'keyColumns'>;

interface Txn {
  commitLsn: bigint;
  commitTime: Date;
  xid: number;
  ordinal: number;
}

const WAL_END_REPORT_MS = 100;

/** The prefix of backfill watermarks (sql/watermark.sql): non-transactional messages. */
export const WATERMARK_PREFIX = 'pg-cloudevents.watermark';

type Pending = { kind: 'message'; msg: PgOutputMessage } | { kind: 'keepalive'; lsn: bigint };

/**
 * Reads the slot, decodes pgoutput into Changes and hands them to the consumer in stream order.
 * Reconnects with backoff when the connection or the database goes away, resuming from the
 * slot's confirmed position, so whatever was not acknowledged is simply read again.
 */
export class CaptureSource implements ChangeSource {
  private readonly log = logger('capture');
  private readonly registry = new TypeRegistry();
  private readonly catalog: CatalogLike;
  private readonly relations = new Map<number, RelationInfo>();
  private readonly tables: Map<string, TableConfig>;
  private stream?: CaptureStream;
  /** The stream being opened, so that `stop()` can abandon it. */
  private opening?: CaptureStream;
  private txn?: Txn;
  /** Messages waiting behind an asynchronous type lookup; empty on the fast path. */
  private pending: Pending[] = [];
  private draining = false;
  private stopping = false;
  /** Aborted by stop(): ends a reconnect wait at once. */
  private readonly stopSignal = new AbortController();
  private pausedByConsumer = false;
  private loopDone?: Promise<void>;
  private walEnd = { latest: -1n, reported: -1n, timer: undefined as NodeJS.Timeout | undefined };
  /** `events.schemaChanges`: the columns known per relation and their types' names; else absent. */
  private readonly schema?: { history: SchemaHistory; names: TypeNamesLike };

  constructor(private readonly opts: CaptureSourceOptions) {
    this.tables = new Map(opts.config.tables.map((t) => [`${t.schema}.${t.name}`, t]));
    this.catalog = opts.catalog ?? new Catalog(opts.pool, this.registry);
    if (opts.config.events?.schemaChanges) {
      this.schema = { history: new SchemaHistory(), names: opts.typeNames ?? new TypeNames(opts.pool) };
    }
  }

  /**
   * Resolves once the first stream is open (retriable failures are retried with backoff, as
   * later reconnects are), or at once when `stop()` is called meanwhile; rejects on a final error.
   * The returned promise `done` settles when capture ends: resolved after `stop()`, rejected with
   * the final error that ended it.
   */
  async start(): Promise<{ done: Promise<void> }> {
    await this.catalog.preload(this.opts.config.tables);
    if (this.stopping) return { done: Promise.resolve() };
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    this.loopDone = this.supervise(opened);
    await Promise.race([open, this.loopDone]);
    return { done: this.loopDone };
  }

  acknowledge(lsn: bigint, idle: boolean): void {
    const stream = this.stream;
    if (!stream) return;
    stream.acknowledge(lsn);
    this.schema?.history.prune(lsn);
    // Report at once when the pipeline is idle; under load the status timer batches reports.
    if (idle) stream.flush();
  }

  setPressure(full: boolean): void {
    this.pausedByConsumer = full;
    if (full) this.stream?.pause();
    // A drain resumes the stream itself when it is done; resuming earlier would read past it.
    else if (!this.pending.length && !this.draining) this.stream?.resume();
  }

  /**
   * Stop reading; let the delivery in flight finish for up to `graceMs` (what it delivers is
   * acknowledged), abandon the rest, report the final position and close the stream.
   */
  async stop(graceMs = 0): Promise<void> {
    this.stopping = true;
    clearTimeout(this.walEnd.timer);
    this.stream?.pause();
    this.stopSignal.abort();
    // A stream still starting has nothing to finish.
    const opening = this.opening?.stop();
    await this.opts.consumer.stop(graceMs);
    await Promise.all([opening, this.stream?.stop()]);
    await this.loopDone?.catch(() => undefined);
  }

  /** Opens one stream; it rejects, its connection closed, when the server refuses it. */
  private async connect(): Promise<CaptureStream> {
    const { config, lifecycle } = this.opts;
    const slot = this.opts.temporarySlot ?? config.capture.slot;
    const open = this.opts.openStream ?? ((o: ReplicationStreamOptions) => new ReplicationStream(o));
    const stream = open({
      connectionString: config.databaseUrl,
      slot,
      publication: config.capture.publication,
      statusIntervalMs: config.capture.statusIntervalMs,
      temporarySlot: Boolean(this.opts.temporarySlot),
      onData: (data) => this.onData(data),
      onKeepalive: (lsn) => this.onKeepalive(lsn),
      onWalEnd: (lsn) => this.reportWalEnd(lsn),
    });
    stream.on('acknowledged', (lsn) => lifecycle.emit('capture:acknowledged', { lsn }));
    this.txn = undefined;
    this.pending = [];
    this.opening = stream;
    try {
      await stream.start();
    } finally {
      this.opening = undefined;
    }
    this.stream = stream;
    if (this.pausedByConsumer) stream.pause();
    lifecycle.emit('capture:connected', { slot, publication: config.capture.publication, startLsn: stream.acknowledgedLsn });
    return stream;
  }

  /**
   * Opens the stream and opens it again whenever it fails, until `stop()` or a final error.
   * Retries back off exponentially from reconnectDelay up to reconnectMax; the backoff starts
   * afresh only after a stream that really ran (the server sent something), so a server that
   * refuses START_REPLICATION (slot busy) or drops every stream at once is not hammered.
   */
  private async supervise(opened: () => void): Promise<void> {
    const { capture } = this.opts.config;
    const backoff = new Backoff({ kind: 'exponential', delayMs: capture.reconnectDelayMs, maxMs: capture.reconnectMaxMs });
    for (;;) {
      let error: Error | undefined;
      try {
        const stream = await this.connect();
        opened();
        error = await stream.ended;
        if (this.stopping) return;
        if (stream.streamed) backoff.reset();
        // Queued work was never acknowledged; the slot will send it again.
        await this.opts.consumer.reset();
      } catch (err) {
        if (this.stopping) return;
        error = err as Error;
      }
      if (error instanceof PgceError && !error.retriable) throw error;
      if (this.stopping) return;
      const delay = backoff.next();
      this.opts.lifecycle.emit('capture:disconnected', { error, retryInMs: delay });
      this.log.warn({ err: error && errorMessage(error), retryInMs: delay }, 'replication stream lost; reconnecting');
      await sleep(delay, this.stopSignal.signal).catch(() => undefined);
      if (this.stopping) return;
    }
  }

  /**
   * The server's WAL end moves with every XLogData message (three per single-row transaction);
   * metrics and /status need it at most every WAL_END_REPORT_MS, and always get the latest value
   * (trailing edge), so a burst never leaves the lag stale.
   */
  private reportWalEnd(lsn: bigint): void {
    const w = this.walEnd;
    w.latest = lsn;
    if (w.timer || lsn === w.reported) return;
    w.reported = lsn;
    this.opts.lifecycle.emit('capture:walEnd', { lsn });
    w.timer = setTimeout(() => {
      w.timer = undefined;
      if (w.latest !== w.reported) this.reportWalEnd(w.latest);
    }, WAL_END_REPORT_MS);
    w.timer.unref();
  }

  /**
   * Errors raised here end the stream (ReplicationStream catches them). Decoding a row cannot fail
   * here (see `decodeRowChange`), so what remains is the stream itself making no sense, or a bug:
   * deterministic, so retrying would replay the same bytes forever. They are final.
   */
  private onData(data: Buffer): void {
    try {
      this.receive(data);
    } catch (err) {
      throw finalCaptureError(err);
    }
  }

  private receive(data: Buffer): void {
    const msg = parsePgOutput(data);
    if (this.pending.length || this.draining) {
      this.pending.push({ kind: 'message', msg });
      return;
    }
    if (msg.tag === 'relation' && this.needsLookup(msg)) {
      this.pending.push({ kind: 'message', msg });
      void this.drain();
      return;
    }
    this.handle(msg);
  }

  private onKeepalive(lsn: bigint): void {
    try {
      if (this.pending.length || this.draining) this.pending.push({ kind: 'keepalive', lsn });
      // Inside a transaction the server's position may already be past its commit: never confirm it.
      else if (!this.txn) this.opts.consumer.position(lsn);
    } catch (err) {
      throw finalCaptureError(err);
    }
  }

  /**
   * Slow path: resolve unknown column types before decoding further, keeping stream order. Errors
   * follow the fast path's policy: a lookup that failed for a transient reason (the database
   * restarting, a timeout) restarts the stream with backoff; anything else ends capture.
   */
  private async drain(): Promise<void> {
    this.draining = true;
    this.stream?.pause();
    try {
      while (this.pending.length && !this.stopping) {
        const item = this.pending.shift()!;
        if (item.kind === 'keepalive') {
          if (!this.txn) this.opts.consumer.position(item.lsn);
          continue;
        }
        if (item.msg.tag === 'relation' && this.needsLookup(item.msg)) {
          try {
            if (this.catalog.needsLookup(item.msg)) await this.catalog.lookup(item.msg);
            if (this.needsTypeNames(item.msg)) await this.schema!.names.lookup(item.msg.columns);
          } catch (err) {
            throw lookupError(err, item.msg);
          }
        }
        this.handle(item.msg);
      }
    } catch (err) {
      const error = err instanceof PgceError && err.retriable ? err : finalCaptureError(err);
      this.log.error({ err: errorMessage(error), code: error.code, retriable: error.retriable },
        error.retriable ? 'catalog lookup failed; restarting the stream' : 'capture failed');
      this.pending = [];
      this.stream?.abort(error);
    } finally {
      this.draining = false;
      if (!this.pausedByConsumer) this.stream?.resume();
    }
  }

  private handle(msg: PgOutputMessage): void {
    const consumer = this.opts.consumer;
    switch (msg.tag) {
      case 'begin':
        this.txn = { commitLsn: msg.finalLsn, commitTime: msg.commitTime, xid: msg.xid, ordinal: 0 };
        return;
      case 'commit':
        this.txn = undefined;
        consumer.commit(msg.endLsn);
        return;
      case 'relation': {
        const relation = relationFromMessage(msg);
        // The catalog's key, not pgoutput's flags (with REPLICA IDENTITY FULL every column is flagged).
        const keys = this.catalog.keyColumns(msg.id);
        if (keys) relation.keyColumns = keys;
        else if (relation.replicaIdentity === 'full') relation.keyColumns = [];
        this.relations.set(msg.id, relation);
        this.schemaChange(relation);
        return;
      }
      case 'insert':
      case 'update':
      case 'delete': {
        const change = this.rowChange(msg);
        if (!change) return;
        if ('raw' in change) consumer.undecodable(change);
        else this.emit(change);
        return;
      }
      case 'truncate':
        for (const id of msg.relationIds) {
          const txn = this.requireTxn();
          const relation = this.relation(id);
          const ordinal = txn.ordinal++;
          if (!this.captured(relation)) continue;
          this.emit({
            kind: 'truncate', relation, cascade: msg.cascade, restartIdentity: msg.restartIdentity,
            commitLsn: txn.commitLsn, commitTime: txn.commitTime, xid: txn.xid, ordinal,
          });
        }
        return;
      case 'message':
        if (msg.prefix === WATERMARK_PREFIX) this.watermark(msg);
        else this.appEvent(msg);
        return;
      default:
        return; // type and origin messages carry nothing to emit
    }
  }

  /**
   * A backfill's watermark: decoded outside every transaction, so everything committed before it
   * was handed over already. Tokens of other pipelines (or of an earlier term) are the
   * consumer's to ignore.
   */
  private watermark(msg: Extract<PgOutputMessage, { tag: 'message' }>): void {
    if (msg.transactional || this.txn) return;
    this.opts.consumer.watermark?.(msg.content.toString('utf8'), msg.lsn);
  }

  // --- Application events (README "Application events") ---------------------------------------

  /**
   * A logical message with the configured prefix is an application event. Only transactional ones
   * (pgcloudevents.emit writes those): they sit inside their transaction, take an ordinal like a
   * row change, and so arrive exactly when it commits, in its order. A non-transactional message
   * (written outside any transaction's fate) is ignored, as are other prefixes (the heartbeat).
   */
  private appEvent(msg: Extract<PgOutputMessage, { tag: 'message' }>): void {
    if (msg.prefix !== messagePrefix(this.opts.config)) return;
    if (!msg.transactional || !this.txn) {
      this.log.warn({ prefix: msg.prefix, lsn: msg.lsn.toString() }, 'non-transactional application event ignored: emit it with transactional = true');
      return;
    }
    const txn = this.txn;
    const base = { commitLsn: txn.commitLsn, commitTime: txn.commitTime, xid: txn.xid, ordinal: txn.ordinal++ };
    const content = msg.content.toString('utf8');
    let event: AppEvent;
    try {
      event = parseAppEvent(content);
    } catch (err) {
      // Deterministic (the same text parses the same way): dead-letter it with its text, go on.
      this.opts.consumer.undecodable({
        ...base, kind: 'message', prefix: msg.prefix, raw: { content }, error: err instanceof Error ? err : new Error(String(err)),
      });
      return;
    }
    this.emit({ ...base, kind: 'message', prefix: msg.prefix, event });
  }
  // --- end of application events -------------------------------------------------------------

  /** The row change, or undefined when its table is not captured (it still takes an ordinal). */
  private rowChange(msg: RowMessage): Change | UndecodableChange | undefined {
    const txn = this.requireTxn();
    const relation = this.relation(msg.relationId);
    // Every change takes an ordinal, captured or not, so ids do not depend on the configuration.
    const ordinal = txn.ordinal++;
    if (!this.captured(relation)) return undefined;
    const base = { relation, commitLsn: txn.commitLsn, commitTime: txn.commitTime, xid: txn.xid, ordinal };
    try {
      return decodeRowChange(msg, base, this.registry);
    } catch (err) {
      // Deterministic (the same bytes decode the same way): dead-letter it with its raw row.
      return { ...base, kind: msg.tag, raw: rawRow(relation, msg), error: err instanceof Error ? err : new Error(String(err)) };
    }
  }

  private needsLookup(msg: RelationMessage): boolean {
    return this.catalog.needsLookup(msg) || this.needsTypeNames(msg);
  }

  // --- schema-change events (README "Schema-change events") ---

  /** Column type names are needed only for schema_change events, and only of captured tables. */
  private needsTypeNames(msg: RelationMessage): boolean {
    return this.schema !== undefined && this.tables.has(`${msg.schema}.${msg.table}`) && this.schema.names.missing(msg.columns);
  }

  /**
   * A Relation message inside a transaction comes right before the first change that uses it: when
   * its columns differ from the ones known at that position, a schema change at that change's
   * position (it takes no ordinal) is handed over first.
   */
  private schemaChange(relation: RelationInfo): void {
    const txn = this.txn;
    if (!this.schema || !txn || !this.captured(relation)) return;
    const names = this.schema.names;
    const columns = schemaColumns(relation, (c) => names.name(c));
    const old = this.schema.history.observe(relation.id, columns, txn.commitLsn, txn.ordinal);
    if (!old) return;
    this.emit({
      kind: 'schema', relation, oldColumns: old, newColumns: columns,
      commitLsn: txn.commitLsn, commitTime: txn.commitTime, xid: txn.xid, ordinal: txn.ordinal,
    });
  }

  // --- end schema-change events ---

  private emit(change: Change): void {
    this.opts.lifecycle.emit('capture:change', { change });
    this.opts.consumer.change(change);
  }

  private captured(relation: RelationInfo): boolean {
    return this.tables.has(`${relation.schema}.${relation.table}`);
  }

  private relation(id: number): RelationInfo {
    const r = this.relations.get(id);
    if (!r) throw new PgceError('PGCE_ERR_PROTOCOL', `change for relation ${id} before its Relation message`);
    return r;
  }

  private requireTxn(): Txn {
    if (!this.txn) throw new PgceError('PGCE_ERR_PROTOCOL', 'change outside a transaction');
    return this.txn;
  }
}

type RowMessage = Extract<PgOutputMessage, { tag: 'insert' | 'update' | 'delete' }>;
type ChangeHead = Pick<TableChange, 'relation' | 'commitLsn' | 'commitTime' | 'xid' | 'ordinal'>;

/** Decodes a row message into a Change; throws when a tuple does not fit its relation. */
function decodeRowChange(msg: RowMessage, base: ChangeHead, registry: TypeRegistry): Change {
  const { relation } = base;
  if (msg.tag === 'insert') {
    const { row, missingColumns } = tupleToRow(relation, msg.new, registry);
    return { ...base, kind: 'insert', new: row, missingColumns };
  }
  const oldTuple = msg.old ?? msg.key;
  const old = oldTuple ? tupleToRow(relation, oldTuple, registry) : undefined;
  const oldIsKeyOnly = !msg.old;
  // A key tuple ('K') sends the other columns as nulls: they are unknown, not null, so drop them.
  if (old && oldIsKeyOnly) old.row = pick(old.row, relation.keyColumns);
  if (msg.tag === 'update') {
    const { row, missingColumns } = tupleToRow(relation, msg.new, registry);
    // With REPLICA IDENTITY FULL the old tuple holds the unchanged TOAST value the new one lacks.
    if (old && !oldIsKeyOnly) {
      for (const c of missingColumns.slice()) {
        if (c in old.row) {
          row[c] = old.row[c];
          missingColumns.splice(missingColumns.indexOf(c), 1);
        }
      }
    }
    return { ...base, kind: 'update', new: row, old: old?.row, oldIsKeyOnly, missingColumns };
  }
  if (!old) throw new PgceError(ErrorCodes.PROTOCOL, `delete on ${relation.schema}.${relation.table} without an old tuple`);
  return { ...base, kind: 'delete', old: old.row, oldIsKeyOnly, missingColumns: old.missingColumns };
}

/** A row message's tuples as PostgreSQL sent them (text), for the record of an undecodable change. */
function rawRow(relation: RelationInfo, msg: RowMessage): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  if (msg.tag !== 'delete') raw.new = rawTuple(relation, msg.new);
  const old = msg.tag === 'insert' ? undefined : msg.old ?? msg.key;
  if (old) raw.old = rawTuple(relation, old);
  return raw;
}

function rawTuple(relation: RelationInfo, tuple: TupleData): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  tuple.forEach((value, i) => {
    const name = relation.columns[i]?.name ?? `#${i + 1}`;
    if (value.kind === 't') out[name] = value.value;
    else if (value.kind === 'b') out[name] = { base64: value.value.toString('base64') };
    else if (value.kind === 'u') out[name] = { unchanged: true };
    else out[name] = null;
  });
  return out;
}

/** A failure of our own decoding: final unless it says otherwise (never retried blindly). */
function finalCaptureError(err: unknown): PgceError {
  if (err instanceof PgceError && !err.retriable) return err;
  return new PgceError(ErrorCodes.INTERNAL, `capture stopped on an unexpected error: ${errorMessage(err)}`, { cause: err });
}

/** A catalog lookup failure: transient (retried by reconnecting) when the database was the cause. */
function lookupError(err: unknown, relation: { schema: string; table: string }): PgceError {
  const what = `looking up the columns of ${relation.schema}.${relation.table}: ${errorMessage(err)}`;
  if (isRetriableDbError(err, 'query')) return new PgceError(ErrorCodes.REPLICATION, what, { retriable: true, cause: err });
  return new PgceError(ErrorCodes.CATALOG, what, { cause: err });
}

function pick(row: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (k in row) out[k] = row[k];
  return out;
}
