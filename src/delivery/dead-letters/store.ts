import type { CloudEvent } from 'cloudevents';
import { formatLsn } from '../../capture/change';
import { quoteIdent } from '../../capture/catalog-sql';
import type { DeadLettersConfig } from '../../config/types';
import { ErrorCodes, PgceError, errorMessage } from '../../errors';
import { scrubSecrets } from '../../logger';
import type { FailedDelivery } from '../dead-letter';

/** What the store needs from `pg`: a Pool or a Client. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: any[]; rowCount: number | null }>;
}

export interface DeadLetterRow {
  /** bigserial, as text (int8 does not fit a JS number in general). */
  id: string;
  eventId: string;
  source: string | null;
  type: string | null;
  subject: string | null;
  partitionKey: string | null;
  /** The structured-mode CloudEvent (JSON format); absent from `list` unless asked for. */
  event?: Record<string, unknown>;
  error: string;
  status: number | null;
  attempts: number;
  firstAttemptAt: Date;
  lastAttemptAt: Date;
  createdAt: Date;
  commitLsn: string | null;
}

export interface ListOptions {
  /** Rows per call (default 100). */
  limit?: number;
  /** Only rows with a larger id: pages through the table in id order. */
  afterId?: string;
  /** Include the event (the `--json` output); the table view leaves it out. */
  withEvent?: boolean;
}

const PG_UNDEFINED_TABLE = '42P01';
const PG_UNDEFINED_SCHEMA = '3F000';
const COLUMNS = `id::text AS id, event_id, source, type, subject, partition_key, error, status, attempts,
  first_attempt_at, last_attempt_at, created_at, commit_lsn::text AS commit_lsn`;
// The error text is for people; a sink's endless answer must not bloat the row.
const MAX_ERROR_CHARS = 8192;

/**
 * The dead-letter table (created by `setup`, see sql/000001.sql). Every statement is a constant
 * built once here around the quoted table name; values are always parameters.
 */
export class DeadLetterStore {
  readonly tableName: string;
  private readonly sql: {
    insert: string;
    list: string;
    listWithEvent: string;
    get: string;
    delete: string;
    purgeAll: string;
    purgeBefore: string;
    count: string;
    recordFailure: string;
  };

  constructor(private readonly db: Queryable, config: DeadLettersConfig) {
    this.tableName = `${config.schema}.${config.table}`;
    const t = `${quoteIdent(config.schema)}.${quoteIdent(config.table)}`;
    this.sql = {
      insert: `INSERT INTO ${t} (event_id, source, type, subject, partition_key, event, error, status, attempts,
  first_attempt_at, last_attempt_at, commit_lsn)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12::pg_lsn) RETURNING id::text AS id`,
      list: `SELECT ${COLUMNS} FROM ${t} WHERE id > $1::bigint ORDER BY id LIMIT $2`,
      listWithEvent: `SELECT ${COLUMNS}, event FROM ${t} WHERE id > $1::bigint ORDER BY id LIMIT $2`,
      get: `SELECT ${COLUMNS}, event FROM ${t} WHERE id = $1::bigint`,
      delete: `DELETE FROM ${t} WHERE id = $1::bigint`,
      purgeAll: `DELETE FROM ${t}`,
      purgeBefore: `DELETE FROM ${t} WHERE created_at < $1`,
      count: `SELECT count(*)::bigint::text AS n FROM ${t}`,
      // A failed replay: the row stays, with the new error and the attempts added.
      recordFailure: `UPDATE ${t} SET error = $2, status = $3, attempts = attempts + $4, last_attempt_at = now()
WHERE id = $1::bigint`,
    };
  }

  /** Stores a failed delivery; resolves with the new row's id. One attempt (the caller retries). */
  async insert(failed: FailedDelivery): Promise<string> {
    const { event, change } = failed;
    const ext = event as unknown as Record<string, unknown>;
    const params = [
      event.id,
      event.source ?? null,
      event.type ?? null,
      event.subject ?? null,
      typeof ext.partitionkey === 'string' ? ext.partitionkey : null,
      eventJson(event),
      errorText(failed.error),
      failed.status ?? null,
      failed.attempts,
      failed.firstAttemptAt,
      failed.lastAttemptAt,
      change ? formatLsn(change.commitLsn) : null,
    ];
    const { rows } = await this.run(this.sql.insert, params);
    return rows[0].id;
  }

  async list(options: ListOptions = {}): Promise<DeadLetterRow[]> {
    const { rows } = await this.run(options.withEvent ? this.sql.listWithEvent : this.sql.list, [
      options.afterId ?? '0',
      options.limit ?? 100,
    ]);
    return rows.map(toRow);
  }

  async get(id: string): Promise<DeadLetterRow | undefined> {
    const { rows } = await this.run(this.sql.get, [checkId(id)]);
    return rows[0] ? toRow(rows[0]) : undefined;
  }

  /** True when the row existed. */
  async delete(id: string): Promise<boolean> {
    const { rowCount } = await this.run(this.sql.delete, [checkId(id)]);
    return (rowCount ?? 0) > 0;
  }

  /** Deletes every row, or those created before `before`; resolves with how many. */
  async purge(options: { before?: Date } = {}): Promise<number> {
    const { rowCount } = options.before
      ? await this.run(this.sql.purgeBefore, [options.before])
      : await this.run(this.sql.purgeAll);
    return rowCount ?? 0;
  }

  async count(): Promise<number> {
    const { rows } = await this.run(this.sql.count);
    return Number(rows[0].n);
  }

  async recordFailure(id: string, failure: { error: Error; status?: number; attempts: number }): Promise<void> {
    await this.run(this.sql.recordFailure, [checkId(id), errorText(failure.error), failure.status ?? null, failure.attempts]);
  }

  private async run(sql: string, params?: unknown[]) {
    try {
      return await this.db.query(sql, params);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === PG_UNDEFINED_TABLE || code === PG_UNDEFINED_SCHEMA) {
        throw new PgceError(
          ErrorCodes.UNKNOWN_TABLE,
          `the dead-letter table ${this.tableName} does not exist: run \`pg-cloudevents setup\` (deadLetters.schema/table name it)`,
          { retriable: true, cause: err },
        );
      }
      throw err;
    }
  }
}

/** `id` is a bigserial: refuse anything else before PostgreSQL does, with a clearer message. */
function checkId(id: string): string {
  if (!/^\d{1,19}$/.test(id)) {
    throw new PgceError(ErrorCodes.CONFIG_INVALID, `dead-letter id must be a positive integer, got ${JSON.stringify(id)}`);
  }
  return id;
}

/**
 * The event as structured JSON. jsonb refuses U+0000 in strings (PostgreSQL cannot store it in
 * text either), so such characters become U+FFFD rather than blocking the row forever.
 */
function eventJson(event: CloudEvent<unknown>): string {
  return JSON.stringify(event, (_key, value) => (typeof value === 'string' && value.includes('\u0000') ? value.replace(/\u0000/g, '\uFFFD') : value));
}

function errorText(err: Error): string {
  const text = scrubSecrets(errorMessage(err)).replace(/\u0000/g, '\uFFFD') || err.name || 'unknown error';
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS - 1)}…` : text;
}

function toRow(r: Record<string, any>): DeadLetterRow {
  const row: DeadLetterRow = {
    id: r.id,
    eventId: r.event_id,
    source: r.source,
    type: r.type,
    subject: r.subject,
    partitionKey: r.partition_key,
    error: r.error,
    status: r.status,
    attempts: r.attempts,
    firstAttemptAt: r.first_attempt_at,
    lastAttemptAt: r.last_attempt_at,
    createdAt: r.created_at,
    commitLsn: r.commit_lsn,
  };
  if (r.event !== undefined) row.event = r.event;
  return row;
}
