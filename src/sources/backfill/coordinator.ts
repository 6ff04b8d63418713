import type { Config } from '../../config/types';
import { errorMessage } from '../../errors';
import type { Lifecycle } from '../../lifecycle';
import { logger } from '../../logger';
import { isRetriableDbError } from '../../pg/db-errors';
import { Backoff, sleep } from '../../retry';
import type { ChangeSource } from '../contract';
import { supportsMessages } from '../logical/stream';
import type { BackfillRelation, Chunk, ChunkReader } from './chunks';
import type { BackfillRow, BackfillStore } from './store';
import type { BackfillWindow, ChunkOutcome } from './window';

/**
 * The leader's backfill loop (README "Backfill", docs/backfill.md): takes the next pending (or
 * interrupted) backfill of this slot and performs it chunk by chunk while live capture goes on:
 *
 *   arm the window → low watermark → read the chunk → high watermark → the window emits what no
 *   live change superseded → wait until the engine acknowledged the high watermark → record the
 *   chunk's last key → next chunk
 *
 * One chunk in flight at a time: memory holds one chunk's rows. Progress is recorded only after
 * delivery, so a kill -9 repeats at most the chunk in flight and never loses one; a restart of
 * the stream or a lost window reads the same chunk again (same event ids). Between chunks it
 * checks for a cancel and paces to the request's rate.
 */

/** How often the table is asked for a new request while none is pending (ms). */
export const POLL_INTERVAL_MS = 1_000;
/**
 * A high watermark that has not come back in this long (the stream is far behind, or restarting
 * without telling) gives the chunk up; it is read again. Long: a lagging stream is normal.
 */
export const HIGH_WATERMARK_DEADLINE_MS = 300_000;

/** A chunk to read again waits this long first, so a table truncated over and over is not hammered (ms). */
const REDO_WAIT_MS = 100;

export interface BackfillRunning {
  id: string;
  table: string;
  rowsDone: number;
  rowsEmitted: number;
  rowsEstimated: number | null;
  /** Rows read per second since this leader started (or resumed) it. */
  rate: number;
  /** rowsEstimated − rowsDone, at least 0; null without an estimate. */
  remaining: number | null;
  /** Seconds left at the current rate; null when unknown. */
  etaSeconds: number | null;
  startedAt: string | null;
}

export interface CoordinatorOptions {
  config: Config;
  store: BackfillStore;
  reader: ChunkReader;
  window: BackfillWindow;
  source: Pick<ChangeSource, 'writeWatermark'>;
  lifecycle: Lifecycle;
  pollIntervalMs?: number;
}

/** A failure that ends the backfill (state failed) rather than being retried. */
class Refused extends Error {}

export class BackfillCoordinator {
  private readonly log = logger('backfill');
  private readonly abort = new AbortController();
  private loop?: Promise<void>;
  private current?: { row: BackfillRow; since: number; readSince: number; rowsDone: number; rowsEmitted: number };
  private wake?: () => void;

  constructor(private readonly opts: CoordinatorOptions) {}

  start(): void {
    this.loop ??= this.run().catch((err) => {
      if (!this.abort.signal.aborted) this.log.error({ err: errorMessage(err) }, 'backfill loop ended');
    });
  }

  /** Ends the loop at once; a backfill in progress stays running in the table, the next leader continues it. */
  async stop(): Promise<void> {
    this.abort.abort(new Error('backfill stopped'));
    this.opts.window.cancel('backfill stopped');
    await this.loop;
  }

  /** A request may be waiting: look now rather than at the next poll. */
  poke(): void {
    this.wake?.();
  }

  /** The backfill being performed, for /status and metrics. */
  status(): BackfillRunning[] {
    const c = this.current;
    if (!c) return [];
    const elapsed = (Date.now() - c.since) / 1000;
    const rate = elapsed > 0 ? (c.rowsDone - c.readSince) / elapsed : 0;
    const remaining = c.row.rowsEstimated === null ? null : Math.max(0, c.row.rowsEstimated - c.rowsDone);
    return [{
      id: c.row.id, table: `${c.row.schema}.${c.row.table}`,
      rowsDone: c.rowsDone, rowsEmitted: c.rowsEmitted, rowsEstimated: c.row.rowsEstimated,
      rate: Math.round(rate), remaining, etaSeconds: remaining !== null && rate > 0 ? Math.ceil(remaining / rate) : null,
      startedAt: c.row.startedAt?.toISOString() ?? null,
    }];
  }

  private async run(): Promise<void> {
    const { signal } = this.abort;
    const backoff = new Backoff({ kind: 'exponential', delayMs: 500, maxMs: 30_000 });
    while (!signal.aborted) {
      let row: BackfillRow | undefined;
      try {
        row = await this.opts.store.next();
        if (row) await this.perform(row);
        backoff.reset();
      } catch (err) {
        if (signal.aborted) return;
        const delay = backoff.next();
        this.log.warn({ err: errorMessage(err), backfill: row?.id, retryInMs: delay }, 'backfill interrupted; retrying');
        await this.pause(delay);
        continue;
      } finally {
        this.current = undefined;
      }
      if (!row) await this.pause(this.opts.pollIntervalMs ?? POLL_INTERVAL_MS);
    }
  }

  private async pause(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const { signal } = this.abort;
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
    });
    this.wake = undefined;
  }

  /** One backfill, from its last recorded key to the end, a cancel, a final failure or the end of the term. */
  private async perform(row: BackfillRow): Promise<void> {
    const { store, reader } = this.opts;
    const table = `${row.schema}.${row.table}`;
    try {
      await this.check(row);
      let rel = await this.relation(row);
      const estimate = row.rowsEstimated ?? await reader.estimate(rel, row.where, null).catch((err) => {
        throw isRetriableDbError(err, 'query') ? err : new Refused(`the condition ${JSON.stringify(row.where)} cannot be used on ${table}: ${errorMessage(err)}`);
      });
      const started = await store.start(row.id, estimate);
      if (!started) return; // cancelled meanwhile
      this.current = { row: started, since: Date.now(), readSince: started.rowsDone, rowsDone: started.rowsDone, rowsEmitted: started.rowsEmitted };
      this.opts.lifecycle.emit('backfill:started', { id: row.id, table, rowsEstimated: started.rowsEstimated, resumed: started.lastKey !== null });
      this.log.info({ backfill: row.id, table, resumeAfter: started.lastKey, estimate: started.rowsEstimated }, started.lastKey ? 'backfill resumed' : 'backfill started');
      let lastKey = started.lastKey;
      let chunkNo = 0;
      let nextAt = 0;
      const rate = started.rate;
      while (!this.abort.signal.aborted) {
        const now = await store.get(row.id);
        if (now?.state !== 'running') {
          if (now?.state === 'cancelled') this.finished(row, 'cancelled', undefined, false);
          return;
        }
        if (rate && nextAt > Date.now()) await sleep(nextAt - Date.now(), this.abort.signal);
        rel = chunkNo === 0 ? rel : await this.relation(row);
        const chunkStarted = Date.now();
        const result = await this.chunk(row, rel, lastKey, chunkNo++);
        if (result === 'redo') {
          await sleep(REDO_WAIT_MS, this.abort.signal);
          continue;
        }
        const { chunk, outcome } = result;
        if (chunk.rows.length === 0) {
          await store.finish(row.id, 'done');
          return this.finished(row, 'done', undefined, false);
        }
        const running = await store.progress(row.id, chunk.lastKey!, outcome.read, outcome.emitted);
        lastKey = chunk.lastKey;
        this.current!.rowsDone += outcome.read;
        this.current!.rowsEmitted += outcome.emitted;
        this.opts.lifecycle.emit('backfill:chunk', { id: row.id, table, read: outcome.read, emitted: outcome.emitted, superseded: outcome.superseded });
        if (!running) return this.finished(row, 'cancelled', undefined, false);
        if (rate) nextAt = Math.max(nextAt, chunkStarted) + (outcome.read * 1000) / rate;
        if (chunk.rows.length < row.chunkSize) {
          await store.finish(row.id, 'done');
          return this.finished(row, 'done', undefined, false);
        }
      }
    } catch (err) {
      if (this.abort.signal.aborted) return;
      if (!(err instanceof Refused)) throw err;
      const message = err.message;
      this.log.error({ backfill: row.id, table, err: message }, 'backfill failed');
      await store.finish(row.id, 'failed', message);
      this.finished(row, 'failed', message, true);
    }
  }

  private finished(row: BackfillRow, state: 'done' | 'cancelled' | 'failed', error: string | undefined, logged: boolean): void {
    const table = `${row.schema}.${row.table}`;
    this.opts.lifecycle.emit('backfill:finished', { id: row.id, table, state, error });
    if (!logged) this.log.info({ backfill: row.id, table, state, rows: this.current?.rowsDone }, `backfill ${state}`);
  }

  /** What must hold before a backfill can run here; a Refused (state failed) otherwise. */
  private async check(row: BackfillRow): Promise<void> {
    const { config, source, reader } = this.opts;
    const table = `${row.schema}.${row.table}`;
    if (!source.writeWatermark) throw new Refused(`capture mode ${config.capture.mode} cannot write watermarks, which backfill needs`);
    // Logical mode's watermarks are pgoutput messages (14+); trigger mode's are journal rows.
    const version = config.capture.mode === 'logical' ? await reader.serverVersion() : undefined;
    if (version !== undefined && !supportsMessages(version)) {
      throw new Refused(`backfill needs PostgreSQL 14 or later (this server is ${version.split(' ')[0]}): pgoutput sends the logical messages backfill uses as watermarks only from version 14 on`);
    }
    if (!config.tables.some((t) => t.schema === row.schema && t.name === row.table)) {
      throw new Refused(`${table} is not a captured table (tables[] of this pipeline): its live changes could not be watched, so a backfill could overwrite them`);
    }
  }

  private async relation(row: BackfillRow): Promise<BackfillRelation> {
    const table = `${row.schema}.${row.table}`;
    const rel = await this.opts.reader.relation(row.schema, row.table);
    if (!rel) throw new Refused(`table ${table} does not exist`);
    if (rel.relation.keyColumns.length === 0) {
      throw new Refused(`table ${table} has no primary key (nor replica identity index): backfill reads in key order and tells rows apart by their key; add a primary key`);
    }
    return rel;
  }

  /**
   * One chunk through the window: 'redo' when it must be read again (the stream restarted, the
   * table changed shape, a transient error), else the chunk and what the window emitted of it,
   * once delivered.
   */
  private async chunk(row: BackfillRow, rel: BackfillRelation, lastKey: string[] | null, chunkNo: number): Promise<'redo' | { chunk: Chunk; outcome: Extract<ChunkOutcome, { kind: 'emitted' }> }> {
    const { window, source, reader, lifecycle } = this.opts;
    const { signal } = this.abort;
    const table = `${row.schema}.${row.table}`;
    const armed = window.arm({ backfillId: row.id, chunkNo, relation: rel.relation });
    let chunk: Chunk;
    try {
      await source.writeWatermark!(armed.low);
      chunk = await reader.read(rel, row.where, lastKey, row.chunkSize, signal);
      if (chunk.rows.length === 0) {
        window.cancel('the chunk is empty');
        return { chunk, outcome: { kind: 'emitted', position: 0n, epoch: window.epoch, read: 0, emitted: 0, superseded: 0 } };
      }
      window.supply({ rows: chunk.rows, snapshot: chunk.snapshot, readAt: chunk.readAt });
      await source.writeWatermark!(armed.high);
    } catch (err) {
      window.cancel('the chunk could not be read');
      if (signal.aborted || isRetriableDbError(err, 'query')) throw err;
      throw new Refused(`reading ${table}${row.where ? ` where ${row.where}` : ''} failed: ${errorMessage(err)}`);
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<ChunkOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'redo', reason: `its high watermark did not come back within ${HIGH_WATERMARK_DEADLINE_MS / 1000} s` }), HIGH_WATERMARK_DEADLINE_MS);
    });
    const outcome = await unlessAborted(Promise.race([armed.outcome, late]), signal).finally(() => clearTimeout(timer));
    if (outcome.kind === 'redo') {
      window.cancel(outcome.reason);
      this.log.info({ backfill: row.id, table, reason: outcome.reason }, 'backfill chunk read again');
      lifecycle.emit('backfill:redo', { id: row.id, table, reason: outcome.reason });
      return 'redo';
    }
    const delivered = await unlessAborted(window.delivered(outcome.position, outcome.epoch), signal);
    if (!delivered) {
      lifecycle.emit('backfill:redo', { id: row.id, table, reason: 'the change stream restarted before the chunk was delivered' });
      return 'redo';
    }
    return { chunk, outcome };
  }
}

/** `work`, or the signal's reason once it aborts; the listener is removed either way. */
function unlessAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  let onAbort!: () => void;
  const stopped = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, stopped]).finally(() => signal.removeEventListener('abort', onAbort));
}
