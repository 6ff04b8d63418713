import type { CloudEvent } from 'cloudevents';
import type { Knex } from 'knex';
import { formatLsn } from '../../sources/change';
import { quoteIdent } from '../../pg/catalog-sql';
import type { DeadLettersConfig } from '../../config/types';
import { ErrorCodes, PgceError, errorMessage } from '../../errors';
import { scrubSecrets } from '../../logger';
import type { FailedDelivery } from '../dead-letter';
import type { UndecodableRecord } from '../undecodable';
import { storedEventText } from './event-text';

export interface DeadLetterRow {
  /** bigserial, as text (int8 does not fit a JS number in general). */
  id: string;
  eventId: string;
  source: string | null;
  type: string | null;
  subject: string | null;
  partitionKey: string | null;
  /** The event's `sequence` extension, when it has one. */
  sequence: string | null;
  /**
   * The newest sequence of the same partition key delivered after this dead letter was stored
   * (see ./superseded.ts): replaying it would deliver an older state last.
   */
  supersededBySequence: string | null;
  /** A change whose event could not be built: no event, its raw row in `rawChange`. */
  undecodable: boolean;
  /**
   * The structured-mode CloudEvent, the exact JSON text that was sent (null for an undecodable
   * change); absent from `list` unless asked for.
   */
  event?: string | null;
  /** An undecodable change's raw row, as capture gave it; absent from `list` unless asked for. */
  rawChange?: string | null;
  error: string;
  status: number | null;
  attempts: number;
  firstAttemptAt: Date;
  lastAttemptAt: Date;
  createdAt: Date;
  commitLsn: string | null;
  /**
   * The name of the destination it failed at (README "Destination names"): `default` for the
   * default route, a broker or handler name; `replay` sends it back there.
   */
  destination: string;
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
// A table set up by an older version: a column or the unique index on event_id is missing.
const PG_UNDEFINED_COLUMN = '42703';
const PG_NO_CONFLICT_TARGET = '42P10';
const COLUMNS = [
  'id', 'event_id', 'source', 'type', 'subject', 'partition_key', 'sequence', 'superseded_by_sequence',
  'error', 'status', 'attempts', 'first_attempt_at', 'last_attempt_at', 'created_at', 'destination',
];
// int8 and pg_lsn as text; `undecodable` derived from the missing event.
const COMPUTED = ['event IS NULL AS undecodable', 'commit_lsn::text AS commit_lsn'];
// Sequences are fixed-width upper-case hex and digits: byte order is their order, whatever the
// database's collation says about '-'.
const BEFORE = (a: string, b: string) => `${a} COLLATE "C" < ${b} COLLATE "C"`;
// The error text is for people; a sink's endless answer must not bloat the row.
const MAX_ERROR_CHARS = 8192;

/**
 * The dead-letter table (made by the schema's migrations, src/pg/schema/). Queries go through
 * knex: its query builder, or `knex.raw` with bindings where an upsert needs expressions (the
 * constants below, around the quoted table name). Values are always bindings.
 */
const SQL = {
  // One row per event id (unique index, migration 000002). Storing the same event again (a crash
  // after the row was stored but before its position was acknowledged, then a second failure)
  // keeps the row and the event first stored, adds the attempts and records the latest error.
  // The destination first stored stays, like the event.
  insert: (t: string) => `INSERT INTO ${t} AS d (event_id, source, type, subject, partition_key, sequence, event, error, status,
  attempts, first_attempt_at, last_attempt_at, commit_lsn, destination)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::pg_lsn, ?)
ON CONFLICT (event_id) DO UPDATE SET error = EXCLUDED.error, status = EXCLUDED.status,
  attempts = d.attempts + EXCLUDED.attempts, last_attempt_at = GREATEST(d.last_attempt_at, EXCLUDED.last_attempt_at)
RETURNING id::text AS id`,
  // No delivery was attempted: attempts 0, both times the moment it was stored.
  insertUndecodable: (t: string) => `INSERT INTO ${t} AS d (event_id, source, partition_key, raw_change, error, attempts,
  first_attempt_at, last_attempt_at, commit_lsn)
VALUES (?, ?, ?, ?, ?, 0, now(), now(), ?::pg_lsn)
ON CONFLICT (event_id) DO UPDATE SET error = EXCLUDED.error, last_attempt_at = now(),
  raw_change = COALESCE(d.raw_change, EXCLUDED.raw_change)
RETURNING id::text AS id`,
  // Marks the older dead letters of the key at that destination, and says whether any are left
  // (else the caller stops watching it). The outer SELECT sees the rows as before the UPDATE.
  // Bindings: sequence, destination, key, sequence, sequence, destination, key.
  markSuperseded: (t: string) => `WITH marked AS (
  UPDATE ${t} SET superseded_by_sequence = ?
   WHERE destination = ? AND partition_key = ? AND ${BEFORE('sequence', '?::text')}
     AND (superseded_by_sequence IS NULL OR ${BEFORE('superseded_by_sequence', '?::text')})
  RETURNING 1)
SELECT (SELECT count(*)::int FROM marked) AS marked,
       EXISTS (SELECT 1 FROM ${t} WHERE destination = ? AND partition_key = ?) AS remaining`,
};

/** A row's stream at one destination: what a newer delivery supersedes. */
export interface DestinationKey {
  destination: string;
  partitionKey: string;
}

export class DeadLetterStore {
  readonly tableName: string;
  /** `"schema"."table"`, quoted once here. */
  private readonly table: string;

  constructor(private readonly knex: Knex, config: DeadLettersConfig) {
    this.tableName = `${config.schema}.${config.table}`;
    this.table = `${quoteIdent(config.schema)}.${quoteIdent(config.table)}`;
  }

  /** A query on the table; `d` names it, as in the upserts. */
  private rows(): Knex.QueryBuilder {
    return this.knex.from(this.knex.raw(`${this.table} AS d`));
  }

  private columns(withEvent = false): (string | Knex.Raw)[] {
    return [
      ...COLUMNS.map((c) => (c === 'id' ? this.knex.raw('d.id::text AS id') : `d.${c}`)),
      ...COMPUTED.map((c) => this.knex.raw(c)),
      ...(withEvent ? ['d.event', 'd.raw_change'] : []),
    ];
  }

  /**
   * Stores a failed delivery; resolves with its row's id (the existing row's when the event is
   * already stored). One attempt (the caller retries).
   */
  async insert(failed: FailedDelivery): Promise<string> {
    const { event, change } = failed;
    const bindings = [
      event.id,
      event.source ?? null,
      event.type ?? null,
      event.subject ?? null,
      partitionKeyOf(event) ?? null,
      sequenceOf(event) ?? null,
      storedEventText(event),
      errorText(failed.error),
      failed.status ?? null,
      failed.attempts,
      failed.firstAttemptAt,
      failed.lastAttemptAt,
      change ? formatLsn(change.commitLsn) : null,
      failed.destination.name,
    ];
    const { rows } = await this.run(this.knex.raw(SQL.insert(this.table), bindings));
    return rows[0].id;
  }

  /**
   * Stores a change whose event could not be built, with its raw row and the reason; resolves
   * with its row's id. Idempotent like `insert`: the same id again updates the error only.
   */
  async insertUndecodable(record: UndecodableRecord): Promise<string> {
    const { rows } = await this.run(this.knex.raw(SQL.insertUndecodable(this.table), [
      record.eventId,
      record.source,
      record.partitionKey,
      withoutNul(record.raw),
      errorText(new Error(record.error)),
      formatLsn(record.commitLsn),
    ]));
    return rows[0].id;
  }

  /** The (destination, partition key) pairs that have dead letters with a sequence (what ./superseded.ts watches). */
  async partitionKeys(): Promise<DestinationKey[]> {
    const rows = await this.run(this.rows().distinct('d.destination', 'd.partition_key').whereNotNull('d.partition_key').whereNotNull('d.sequence'));
    return rows.map((r: { destination: string; partition_key: string }) => ({ destination: r.destination, partitionKey: r.partition_key }));
  }

  /**
   * Records that `sequence` of `partitionKey` was delivered to `destination`: that destination's
   * dead letters of the key with an older sequence are marked superseded by it (another
   * destination's delivery says nothing about them). `remaining` is false once none are left.
   */
  async markSuperseded(at: DestinationKey, sequence: string): Promise<{ marked: number; remaining: boolean }> {
    const { destination, partitionKey } = at;
    const bindings = [sequence, destination, partitionKey, sequence, sequence, destination, partitionKey];
    const { rows } = await this.run(this.knex.raw(SQL.markSuperseded(this.table), bindings));
    return { marked: rows[0].marked, remaining: rows[0].remaining };
  }

  async list(options: ListOptions = {}): Promise<DeadLetterRow[]> {
    // `d.id`, the bigint: the output column `id` is text, which sorts 10 before 9 (rows out of
    // order, and pages after the last id skipping or repeating rows).
    const rows = await this.run(this.rows().select(this.columns(options.withEvent))
      .where('d.id', '>', this.knex.raw('?::bigint', [options.afterId ?? '0']))
      .orderBy('d.id').limit(options.limit ?? 100));
    return rows.map(toRow);
  }

  async get(id: string): Promise<DeadLetterRow | undefined> {
    const rows = await this.run(this.rows().select(this.columns(true)).where('d.id', this.knex.raw('?::bigint', [checkId(id)])));
    return rows[0] ? toRow(rows[0]) : undefined;
  }

  /** True when the row existed. */
  async delete(id: string): Promise<boolean> {
    const n: number = await this.run(this.rows().where('d.id', this.knex.raw('?::bigint', [checkId(id)])).del());
    return n > 0;
  }

  /** Deletes every row, or those created before `before`; resolves with how many. */
  async purge(options: { before?: Date } = {}): Promise<number> {
    const query = this.rows();
    if (options.before) query.where('d.created_at', '<', options.before);
    return this.run(query.del());
  }

  /** Rows in the table, or only those with an id larger than `afterId`, or of one destination. */
  async count(options: { afterId?: string; destination?: string } = {}): Promise<number> {
    const query = this.rows().select(this.knex.raw('count(*)::bigint::text AS n'));
    if (options.afterId !== undefined) query.where('d.id', '>', this.knex.raw('?::bigint', [checkId(options.afterId)]));
    if (options.destination !== undefined) query.where('d.destination', options.destination);
    const rows = await this.run(query);
    return Number(rows[0].n);
  }

  /** A failed replay: the row stays, with the new error and the attempts added. */
  async recordFailure(id: string, failure: { error: Error; status?: number; attempts: number }): Promise<void> {
    await this.run(this.rows().where('d.id', this.knex.raw('?::bigint', [checkId(id)])).update({
      error: errorText(failure.error),
      status: failure.status ?? null,
      attempts: this.knex.raw('d.attempts + ?', [failure.attempts]),
      last_attempt_at: this.knex.raw('now()'),
    }));
  }

  private async run<T = any>(query: Knex.QueryBuilder | Knex.Raw): Promise<T> {
    try {
      return (await query) as T;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === PG_UNDEFINED_TABLE || code === PG_UNDEFINED_SCHEMA) {
        throw new PgceError(
          ErrorCodes.UNKNOWN_TABLE,
          `the dead-letter table ${this.tableName} does not exist: run \`pg-cloudevents setup\` (deadLetters.schema/table name it)`,
          { retriable: true, cause: err },
        );
      }
      if (code === PG_UNDEFINED_COLUMN || code === PG_NO_CONFLICT_TARGET) {
        throw new PgceError(
          ErrorCodes.UNKNOWN_TABLE,
          `the dead-letter table ${this.tableName} was set up by an older version: run \`pg-cloudevents setup\` ` +
            `(or \`run\`) to upgrade it (${errorMessage(err)})`,
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

function partitionKeyOf(event: CloudEvent<unknown>): string | undefined {
  const value = (event as unknown as Record<string, unknown>).partitionkey;
  return typeof value === 'string' ? value : undefined;
}

function sequenceOf(event: CloudEvent<unknown>): string | undefined {
  const value = (event as unknown as Record<string, unknown>).sequence;
  return typeof value === 'string' ? value : undefined;
}

/**
 * PostgreSQL text cannot hold U+0000 (the event is safe: its JSON writes it as the escape
 * \u0000). In people's text (errors, a raw row) it becomes U+FFFD rather than blocking the row.
 */
function withoutNul(text: string): string {
  return text.includes('\u0000') ? text.replace(/\u0000/g, '\uFFFD') : text;
}

function errorText(err: Error): string {
  const text = withoutNul(scrubSecrets(errorMessage(err))) || err.name || 'unknown error';
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
    sequence: r.sequence,
    supersededBySequence: r.superseded_by_sequence,
    undecodable: r.undecodable,
    error: r.error,
    status: r.status,
    attempts: r.attempts,
    firstAttemptAt: r.first_attempt_at,
    lastAttemptAt: r.last_attempt_at,
    createdAt: r.created_at,
    commitLsn: r.commit_lsn,
    destination: r.destination,
  };
  if (r.event !== undefined) row.event = r.event;
  if (r.raw_change !== undefined) row.rawChange = r.raw_change;
  return row;
}
