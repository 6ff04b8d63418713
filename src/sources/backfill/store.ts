/**
 * Backfill requests and their progress (README "Backfill"; migration 000006). The CLI and the
 * admin API write requests; the leader of the pipeline whose slot is `slot` claims them in id
 * order and records its progress after each delivered chunk. Reads and writes through knex on a
 * pool the caller owns; identifiers quoted from the schema names, values as bindings.
 */
import type { Knex } from 'knex';
import { ErrorCodes, PgceError } from '../../errors';
import type { SchemaNames } from '../../pg/schema/names';
import { backfillsObjects } from '../../pg/schema/migrations/000006-backfills';
import { isMissingTable } from '../../trigger-rules/store';
import { ACTIVE_SQL, FINISH_SQL, GET_SQL, INSERT_SQL, LIST_SQL, NEXT_SQL, PROGRESS_SQL, START_SQL, STATE_SQL } from './sql';

export type BackfillState = 'pending' | 'running' | 'done' | 'cancelled' | 'failed';
export type BackfillOrigin = 'cli' | 'api' | 'on_add';

export const ACTIVE_STATES: readonly BackfillState[] = ['pending', 'running'];

/** What a request asks for, per table. */
export interface BackfillRequest {
  schema: string;
  table: string;
  /** An SQL condition on the table's rows, or undefined for all rows. */
  where?: string;
  chunkSize: number;
  /** Rows per second at most; undefined for no limit. */
  rate?: number;
  origin: BackfillOrigin;
}

export interface BackfillRow {
  /** A bigint's text: ids are compared and printed, never computed with. */
  id: string;
  slot: string;
  schema: string;
  table: string;
  where: string | null;
  chunkSize: number;
  rate: number | null;
  origin: BackfillOrigin;
  state: BackfillState;
  /** The last delivered chunk's last key: each key column's text, in key order; null before the first chunk. */
  lastKey: string[] | null;
  rowsDone: number;
  rowsEmitted: number;
  rowsEstimated: number | null;
  error: string | null;
  createdAt: Date;
  startedAt: Date | null;
  updatedAt: Date;
  finishedAt: Date | null;
}

/** The chunk size unless `--chunk` (or the request) says otherwise. */
export const DEFAULT_CHUNK_SIZE = 1000;
/** `backfill list` shows this many, newest first. */
export const DEFAULT_LIST_LIMIT = 50;

export class BackfillStore {
  private readonly table: string;

  constructor(private readonly knex: Knex, private readonly names: Pick<SchemaNames, 'schema' | 'backfills'>, private readonly slot: string) {
    this.table = backfillsObjects(names as SchemaNames).table;
  }

  /** `schema.table`, as messages name it. */
  get displayName(): string {
    return `${this.names.schema}.${this.names.backfills}`;
  }

  /** One row per table, in the order given, in one transaction: all are requested or none. */
  async request(requests: BackfillRequest[]): Promise<BackfillRow[]> {
    return this.guard(() => this.knex.transaction(async (trx) => {
      const rows: BackfillRow[] = [];
      for (const r of requests) {
        const { rows: [row] } = await trx.raw(INSERT_SQL(this.table), [
          this.slot, r.schema, r.table, r.where ?? null, r.chunkSize, r.rate ?? null, r.origin,
        ]);
        rows.push(toRow(row));
      }
      return rows;
    }));
  }

  async list(limit = DEFAULT_LIST_LIMIT): Promise<BackfillRow[]> {
    return (await this.query(LIST_SQL(this.table), [this.slot, limit])).rows.map(toRow);
  }

  async active(): Promise<BackfillRow[]> {
    return (await this.query(ACTIVE_SQL(this.table), [this.slot])).rows.map(toRow);
  }

  async get(id: string): Promise<BackfillRow | undefined> {
    const { rows } = await this.query(GET_SQL(this.table), [this.slot, checkId(id)]);
    return rows.length ? toRow(rows[0]) : undefined;
  }

  /** The backfill to perform next: an interrupted (running) one first, else the oldest pending. */
  async next(): Promise<BackfillRow | undefined> {
    const { rows } = await this.query(NEXT_SQL(this.table), [this.slot]);
    return rows.length ? toRow(rows[0]) : undefined;
  }

  /** Marks it running (keeping an earlier start and estimate); undefined when it was cancelled meanwhile. */
  async start(id: string, estimate: number | null): Promise<BackfillRow | undefined> {
    const { rows } = await this.query(START_SQL(this.table), [estimate, checkId(id)]);
    return rows.length ? toRow(rows[0]) : undefined;
  }

  /**
   * After a chunk is delivered: its last key, and the rows it read and emitted. Returns false when
   * the backfill is no longer running (cancelled): the caller stops.
   */
  async progress(id: string, lastKey: string[], rowsRead: number, rowsEmitted: number): Promise<boolean> {
    const { rows } = await this.query(PROGRESS_SQL(this.table), [JSON.stringify(lastKey), rowsRead, rowsEmitted, checkId(id)]);
    return rows.length > 0;
  }

  async finish(id: string, state: 'done' | 'failed', error?: string): Promise<BackfillRow | undefined> {
    const { rows } = await this.query(FINISH_SQL(this.table), [state, error ?? null, checkId(id)]);
    return rows.length ? toRow(rows[0]) : undefined;
  }

  /**
   * Cancels a pending or running backfill: the leader stops before its next chunk; what was sent
   * stays sent. BackfillError `missing` when there is none of that id, `finished` when it ended.
   */
  async cancel(id: string): Promise<BackfillRow> {
    const { rows } = await this.query(FINISH_SQL(this.table), ['cancelled', null, checkId(id)]);
    if (rows.length) return toRow(rows[0]);
    const { rows: existing } = await this.query(STATE_SQL(this.table), [this.slot, checkId(id)]);
    if (existing.length === 0) throw new BackfillError('missing', `backfill ${id} does not exist (for slot ${this.slot})`);
    throw new BackfillError('finished', `backfill ${id} is already ${existing[0].state as string}`);
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (isMissingTable(err)) {
        throw new PgceError(ErrorCodes.UNKNOWN_TABLE, `the backfills table ${this.displayName} does not exist: run \`pg-cloudevents setup\` (it runs the schema's migrations)`, { cause: err });
      }
      throw err;
    }
  }

  private query(sql: string, bindings: unknown[]): Promise<{ rows: Record<string, unknown>[] }> {
    return this.guard(() => this.knex.raw(sql, bindings as Knex.RawBinding[]) as unknown as Promise<{ rows: Record<string, unknown>[] }>);
  }
}

/** Why a request was refused; the admin API answers 404 (missing), 409 (finished) or 400 (invalid). */
export type BackfillErrorReason = 'missing' | 'finished' | 'invalid';

export class BackfillError extends PgceError {
  constructor(readonly reason: BackfillErrorReason, message: string, cause?: unknown) {
    super(ErrorCodes.BACKFILL, message, { retriable: false, detail: { reason }, cause });
    this.name = 'BackfillError';
  }
}

function checkId(id: string): string {
  if (!/^[1-9][0-9]{0,18}$/.test(id)) throw new BackfillError('invalid', `backfill id ${JSON.stringify(id)} is not a number`);
  return id;
}

const num = (v: unknown): number => Number(v as string);

function toRow(r: Record<string, unknown>): BackfillRow {
  return {
    id: r.id as string,
    slot: r.slot_name as string,
    schema: r.schema_name as string,
    table: r.table_name as string,
    where: (r.where_clause as string | null) ?? null,
    chunkSize: r.chunk_size as number,
    rate: (r.rate_limit as number | null) ?? null,
    origin: r.origin as BackfillOrigin,
    state: r.state as BackfillState,
    lastKey: (r.last_key as string[] | null) ?? null,
    rowsDone: num(r.rows_done),
    rowsEmitted: num(r.rows_emitted),
    rowsEstimated: r.rows_estimated === null || r.rows_estimated === undefined ? null : num(r.rows_estimated),
    error: (r.error as string | null) ?? null,
    createdAt: r.created_at as Date,
    startedAt: (r.started_at as Date | null) ?? null,
    updatedAt: r.updated_at as Date,
    finishedAt: (r.finished_at as Date | null) ?? null,
  };
}
