/**
 * The trigger rules table (README "Rules at runtime"): one rule per row, written as in the
 * configuration file, under the rule's own name. Reads and writes through knex on a pool the
 * caller owns; identifiers quoted from the schema names, values as bindings. Writing here is all
 * a change needs: the table's statement trigger NOTIFYs every running process, which re-reads it.
 */
import type { Knex } from 'knex';
import { ErrorCodes, PgceError } from '../errors';
import { quoteIdent } from '../pg/catalog-sql';
import { sqlstateOf } from '../pg/db-errors';
import { JOURNAL_TABLE, type SchemaNames } from '../pg/schema/names';
import { formatLsn, parseLsn } from '../sources/change';
import { CREATE_SQL, DELETE_SQL, GET_SQL, JOURNAL_SNAPSHOT_SQL, LIST_SQL, REPLACE_SQL, SNAPSHOT_SQL } from './sql';

/** A row as stored: `rule` is whatever JSON the row holds (validated by the reader, not here). */
export interface RuleRow {
  name: string;
  rule: unknown;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * Every row, and the position they were read at (one statement, one snapshot): a WAL position in
 * logical mode, a journal row id in trigger mode (a change's commitLsn in each mode).
 */
export interface RuleSnapshot {
  position: bigint;
  rows: RuleRow[];
}

/** Why a write was refused; the admin API answers 409 (exists, file), 404 (missing) or 400 (name). */
export type RuleWriteReason = 'exists' | 'missing' | 'name' | 'file';

export class RuleWriteError extends PgceError {
  constructor(readonly reason: RuleWriteReason, message: string) {
    super(ErrorCodes.TRIGGER_RULE, message, { retriable: false, detail: { reason } });
    this.name = 'RuleWriteError';
  }
}

const PG_UNDEFINED_TABLE = '42P01';
const PG_UNDEFINED_SCHEMA = '3F000';

/** The table is missing: setup (or the leader's start) has not run the migration that makes it. */
export function isMissingTable(err: unknown): boolean {
  const code = sqlstateOf(err) || sqlstateOf((err as { cause?: unknown } | null)?.cause);
  return code === PG_UNDEFINED_TABLE || code === PG_UNDEFINED_SCHEMA || (err instanceof PgceError && err.code === ErrorCodes.UNKNOWN_TABLE);
}

export class RuleStore {
  private readonly table: string;
  private readonly snapshotSql: string;

  /**
   * `journalCapture`: capture.mode trigger, this capture's name: positions are journal row ids
   * (what the journal source gives a change as its commitLsn), not WAL positions.
   */
  constructor(private readonly knex: Knex, private readonly names: Pick<SchemaNames, 'schema' | 'triggerRules'> & Partial<Pick<SchemaNames, 'journal'>>,
    private readonly journalCapture?: string) {
    this.table = `${quoteIdent(names.schema)}.${quoteIdent(names.triggerRules)}`;
    this.snapshotSql = journalCapture === undefined
      ? SNAPSHOT_SQL(this.table)
      : JOURNAL_SNAPSHOT_SQL(this.table, `${quoteIdent(names.schema)}.${quoteIdent(names.journal ?? JOURNAL_TABLE)}`);
  }

  /** A position of `snapshot()` as /status and the log show it: an LSN, or a journal id. */
  formatPosition(position: bigint): string {
    return this.journalCapture === undefined ? formatLsn(position) : String(position);
  }

  /** `schema.table`, as messages name it. */
  get displayName(): string {
    return `${this.names.schema}.${this.names.triggerRules}`;
  }

  async snapshot(): Promise<RuleSnapshot> {
    const bindings = this.journalCapture === undefined ? [] : [this.journalCapture];
    const { rows: [row] } = await this.query(this.snapshotSql, bindings);
    const rows = (row.rows as { name: string; rule: unknown; created_at: string; updated_at: string }[]).map((r) => ({
      name: r.name, rule: r.rule, createdAt: new Date(r.created_at), updatedAt: new Date(r.updated_at),
    }));
    const position = this.journalCapture === undefined ? parseLsn(row.position as string) : BigInt(row.position as string);
    return { position, rows };
  }

  async list(): Promise<RuleRow[]> {
    return (await this.query(LIST_SQL(this.table), [])).rows.map(toRow);
  }

  async get(name: string): Promise<RuleRow | undefined> {
    const { rows } = await this.query(GET_SQL(this.table), [name]);
    return rows.length ? toRow(rows[0]) : undefined;
  }

  /** Inserts a new rule; RuleWriteError `exists` when the name is taken. */
  async create(name: string, rule: unknown): Promise<RuleRow> {
    checkName(name, rule);
    const { rows } = await this.query(CREATE_SQL(this.table), [name, JSON.stringify(rule)]);
    if (rows.length === 0) throw new RuleWriteError('exists', `trigger rule ${JSON.stringify(name)} already exists in ${this.displayName}; replace it instead (PUT)`);
    return toRow(rows[0]);
  }

  /** Inserts or replaces (updated_at = now()); `created` is true for an insert. */
  async replace(name: string, rule: unknown): Promise<RuleRow & { created: boolean }> {
    checkName(name, rule);
    const { rows: [row] } = await this.query(REPLACE_SQL(this.table), [name, JSON.stringify(rule)]);
    return { ...toRow(row), created: row.created === true };
  }

  /** Deletes a rule; RuleWriteError `missing` when there is none of that name. */
  async delete(name: string): Promise<void> {
    const { rows } = await this.query(DELETE_SQL(this.table), [name]);
    if (rows.length === 0) throw new RuleWriteError('missing', `trigger rule ${JSON.stringify(name)} does not exist in ${this.displayName}`);
  }

  private async query(sql: string, bindings: unknown[]): Promise<{ rows: Record<string, unknown>[] } & Record<string, any>> {
    try {
      return await this.knex.raw(sql, bindings as Knex.RawBinding[]);
    } catch (err) {
      if (isMissingTable(err)) {
        throw new PgceError(ErrorCodes.UNKNOWN_TABLE, `the trigger rules table ${this.displayName} does not exist: run \`pg-cloudevents setup\` (it runs the schema's migrations)`, { cause: err });
      }
      throw err;
    }
  }
}

/** The row's name is the rule's: a rule stored under another name would be routed under neither. */
function checkName(name: string, rule: unknown): void {
  const inner = rule !== null && typeof rule === 'object' ? (rule as { name?: unknown }).name : undefined;
  if (inner !== name) {
    throw new RuleWriteError('name', `name: the row's name ${JSON.stringify(name)} must equal the rule's name (got ${inner === undefined ? 'none' : JSON.stringify(inner)})`);
  }
}

function toRow(row: Record<string, unknown>): RuleRow {
  return { name: row.name as string, rule: row.rule, createdAt: row.created_at as Date, updatedAt: row.updated_at as Date };
}
