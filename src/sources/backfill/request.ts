/**
 * A backfill request checked before it is stored (README "Backfill"), the same for the
 * `backfill` command and `POST /api/backfills`: each table is captured, exists and has a key;
 * `where` is one boolean condition on the table that PostgreSQL accepts; chunk and rate are in
 * range; and, in logical mode, the server can send the messages its watermarks are (PostgreSQL
 * 14+). Anything else is refused with a BackfillError('invalid') whose message names the problem
 * and what to do.
 */
import { join } from 'node:path';
import type { Config } from '../../config/types';
import { displayName, parseTableName, tableKey, type QualifiedName } from '../../config/tables';
import { errorMessage } from '../../errors';
import { quoteIdent, quoteTable } from '../../pg/catalog-sql';
import { isTransientDbError } from '../../pg/db-errors';
import { TABLE_KEYS_SQL } from '../../pg/catalog';
import { loadSql } from '../../pg/sql-file';
import { supportsMessages } from '../logical/stream';
import { BackfillError, DEFAULT_CHUNK_SIZE, type BackfillOrigin, type BackfillRequest } from './store';

const BACKFILL_TABLE_SQL = loadSql(join(__dirname, '..', '..', 'pg', 'sql'), 'backfill-table.sql');

/**
 * The shape of a chunk's read, planned (never run) to check `where`: the leader reads
 * `WHERE (<where>) AND <key> > <last key> ORDER BY <key> LIMIT <chunk>`. The one parameter makes
 * it a single statement (the extended protocol refuses a second one).
 */
const WHERE_CHECK_SQL = (table: string, where: string, keys: string[]) =>
  `EXPLAIN SELECT * FROM ${table} WHERE (${where}) ORDER BY ${keys.map(quoteIdent).join(', ')} LIMIT $1`;
const READ_ONLY_SQL = 'BEGIN READ ONLY';
/** Planning never runs the condition, but a catalog lock behind someone's DDL could wait long. */
const CHECK_TIMEOUT_SQL = "SET LOCAL statement_timeout = '5s'";
const ROLLBACK_SQL = 'ROLLBACK';

export const MAX_CHUNK_SIZE = 100_000;
/** rate_limit is an integer column (rows per second). */
const MAX_RATE = 2_147_483_647;

/** What a person or a client asks for, as given (the CLI's options, the API's body). */
export interface BackfillAsk {
  tables: string[];
  where?: string;
  chunk?: number;
  /** Rows per second, already parsed (parseRate). */
  rate?: number;
}

/** How the fields are named in messages: `--where` for the command, `where` for the API. */
export type FieldStyle = 'cli' | 'api';

export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

const fieldName = (style: FieldStyle, field: 'table' | 'where' | 'chunk' | 'rate') =>
  style === 'cli' ? `--${field}` : field === 'table' ? 'tables' : field;

const invalid = (message: string) => new BackfillError('invalid', message);

/** `--chunk`: rows per chunk, a whole number from 1 to 100000. */
export function parseChunk(text: string | number, style: FieldStyle = 'cli'): number {
  const value = typeof text === 'number' ? text : /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(value) || value < 1 || value > MAX_CHUNK_SIZE) {
    throw invalid(`${fieldName(style, 'chunk')}: must be a whole number of rows from 1 to ${MAX_CHUNK_SIZE} (got ${JSON.stringify(text)}); default ${DEFAULT_CHUNK_SIZE}`);
  }
  return value;
}

const PER = { s: 1, m: 60 } as const;

/**
 * `--rate`: rows per second at most, as `5000/s`, `5000` (per second) or `300/m` (per minute).
 * Kept in whole rows per second: `100/m` is refused rather than rounded, naming the nearest.
 */
export function parseRate(text: string | number, style: FieldStyle = 'cli'): number {
  const name = fieldName(style, 'rate');
  const m = typeof text === 'number' ? [String(text), String(text), 's'] : /^\s*(\d+)\s*(?:\/\s*([sm]))?\s*$/.exec(text);
  const count = m ? Number(m[1]) : NaN;
  if (!m || !Number.isInteger(count) || count < 1) {
    throw invalid(`${name}: must be a positive number of rows per second or minute: 5000/s, 5000 (per second) or 300/m (got ${JSON.stringify(text)})`);
  }
  const seconds = PER[(m[2] ?? 's') as keyof typeof PER];
  const perSecond = count / seconds;
  if (!Number.isInteger(perSecond)) {
    const lower = Math.max(1, Math.floor(perSecond));
    throw invalid(`${name}: ${text} is ${perSecond.toFixed(2)} rows per second; the rate is kept in whole rows per second: give ${lower}/s (${lower * seconds}/m) or ${lower + 1}/s`);
  }
  if (perSecond > MAX_RATE) throw invalid(`${name}: ${text} is more than ${MAX_RATE} rows per second; leave it out for no limit`);
  return perSecond;
}

/**
 * Refuses a condition that could reach outside its parentheses: a `)` closing more than it
 * opened, a `;`, or a comment (it would swallow the rest of the chunk's query). Quoted strings,
 * quoted identifiers and dollar-quoted text are skipped. PostgreSQL then judges the rest.
 */
export function whereShapeProblem(where: string): string | undefined {
  if (where.trim() === '') return 'is empty; leave it out to backfill every row';
  let depth = 0;
  for (let i = 0; i < where.length; i++) {
    const ch = where[i];
    if (ch === "'" || ch === '"') {
      // '' and "" are the quote itself; E'\'' is an escaped quote.
      const escapes = ch === "'" && i > 0 && /[eE]/.test(where[i - 1]) && !/[\w$]/.test(where[i - 2] ?? '');
      let j = i + 1;
      for (; j < where.length; j++) {
        if (escapes && where[j] === '\\') j++;
        else if (where[j] === ch) {
          if (where[j + 1] === ch) j++;
          else break;
        }
      }
      if (j >= where.length) return `has an unterminated ${ch === "'" ? 'string' : 'quoted identifier'} starting at position ${i + 1}`;
      i = j;
    } else if (ch === '$' && !/[\w$]/.test(where[i - 1] ?? '')) {
      // $1 would bind to the chunk query's own parameters (the last key).
      if (/[0-9]/.test(where[i + 1] ?? '')) return `contains a parameter ($${where[i + 1]}…) at position ${i + 1}: write the value itself`;
      const tag = /^\$([A-Za-z_][\w]*)?\$/.exec(where.slice(i));
      if (!tag) continue;
      const end = where.indexOf(tag[0], i + tag[0].length);
      if (end < 0) return `has an unterminated dollar-quoted string starting at position ${i + 1}`;
      i = end + tag[0].length - 1;
    } else if (ch === '(') {
      depth++;
    } else if (ch === ')') {
      if (--depth < 0) return `closes a parenthesis it did not open, at position ${i + 1}: it must be one condition`;
    } else if (ch === ';') {
      return `contains ";" at position ${i + 1}: it must be one condition, not statements`;
    } else if ((ch === '-' && where[i + 1] === '-') || (ch === '/' && where[i + 1] === '*')) {
      return `contains a comment at position ${i + 1}: it must be one condition`;
    }
  }
  return depth > 0 ? 'leaves a parenthesis open: it must be one condition' : undefined;
}

/**
 * The request, one BackfillRequest per table in the order given, or BackfillError('invalid')
 * naming the first problem. `db` must be one connection (the `where` check runs in a read-only
 * transaction it opens and rolls back). A lost connection is thrown as it is, not as invalid.
 */
export async function validateBackfill(db: Queryable, config: Config, ask: BackfillAsk, origin: BackfillOrigin, style: FieldStyle = 'cli'): Promise<BackfillRequest[]> {
  const tableField = fieldName(style, 'table');
  if (ask.tables.length === 0) throw invalid(`${tableField}: name at least one captured table (${capturedList(config)})`);
  const chunkSize = ask.chunk === undefined ? DEFAULT_CHUNK_SIZE : parseChunk(ask.chunk, style);
  const rate = ask.rate === undefined ? undefined : parseRate(ask.rate, style);
  let where: string | undefined;
  if (ask.where !== undefined) {
    const problem = whereShapeProblem(ask.where);
    if (problem !== undefined) throw invalid(`${fieldName(style, 'where')} ${JSON.stringify(ask.where)} ${problem}`);
    where = ask.where.trim();
  }

  const names: QualifiedName[] = [];
  for (const text of ask.tables) {
    let name: QualifiedName;
    try {
      name = parseTableName(text);
    } catch (err) {
      throw invalid(`${tableField}: ${errorMessage(err)}`);
    }
    if (names.some((n) => tableKey(n) === tableKey(name))) throw invalid(`${tableField}: ${displayName(name)} is named twice`);
    if (!config.tables.some((t) => tableKey(t) === tableKey(name))) {
      throw invalid(`${tableField}: ${displayName(name)} is not captured, so it cannot be backfilled (captured tables: ${capturedList(config)}); add it to tables (or PG_CLOUDEVENTS_TABLES) and run setup first`);
    }
    names.push(name);
  }

  const requests: BackfillRequest[] = [];
  for (const name of names) {
    const { rows: [row] } = await db.query(BACKFILL_TABLE_SQL, [name.schema, name.name]);
    const version = row.server_version as string;
    // Logical mode's watermarks are pgoutput messages; trigger mode writes its own in the journal.
    if (config.capture.mode === 'logical' && !supportsMessages(version)) {
      throw invalid(`PostgreSQL ${version.split(' ')[0]} cannot backfill: backfill marks its reads in the change stream with pgoutput messages, which need PostgreSQL 14 or later`);
    }
    const shown = displayName(name);
    if (row.kind === null) throw invalid(`${tableField}: ${shown} does not exist (it is in the configuration; was it dropped or renamed?)`);
    if (row.kind !== 'r' && row.kind !== 'p') throw invalid(`${tableField}: ${shown} is not a table (relkind ${String(row.kind)}), so it cannot be backfilled`);
    const { rows: keyRows } = await db.query(TABLE_KEYS_SQL, [[row.relid]]);
    const keys = keyRows.length ? keyRows[0].columns as string[] : [];
    if (keys.length === 0) {
      throw invalid(`${tableField}: ${shown} has no primary key (nor a replica identity index; REPLICA IDENTITY FULL is not a key), so it cannot be backfilled: a backfill reads the table in key order, chunk by chunk, and matches live changes to the rows it read by their key, so that a row changed meanwhile is never overwritten by its older copy. Add a primary key (ALTER TABLE ${shown} ADD PRIMARY KEY (...)), or a unique index on NOT NULL columns with ALTER TABLE ${shown} REPLICA IDENTITY USING INDEX ..., then ask again`);
    }
    if (where !== undefined) await checkWhere(db, name, where, keys, style);
    requests.push({ schema: name.schema, table: name.name, where, chunkSize, rate, origin });
  }
  return requests;
}

/** PostgreSQL plans the chunk's read with the condition, in a transaction that cannot write. */
async function checkWhere(db: Queryable, name: QualifiedName, where: string, keys: string[], style: FieldStyle): Promise<void> {
  await db.query(READ_ONLY_SQL);
  try {
    await db.query(CHECK_TIMEOUT_SQL);
    await db.query(WHERE_CHECK_SQL(quoteTable(name.schema, name.name), where, keys), [1]);
  } catch (err) {
    if (isTransientDbError(err)) throw err;
    throw new BackfillError('invalid', `${fieldName(style, 'where')} ${JSON.stringify(where)} is not a valid condition on ${displayName(name)}: PostgreSQL says: ${errorMessage(err)}`, err);
  } finally {
    await db.query(ROLLBACK_SQL).catch(() => undefined);
  }
}

function capturedList(config: Config): string {
  return config.tables.map((t) => displayName(t)).join(', ') || 'none';
}
