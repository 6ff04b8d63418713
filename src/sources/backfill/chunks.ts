import { join } from 'node:path';
import type { Pool, PoolClient } from 'pg';
import { quoteIdent, quoteTable } from '../../pg/catalog-sql';
import { Catalog, TABLE_KEYS_SQL } from '../../pg/catalog';
import { loadSql } from '../../pg/sql-file';
import { TypeRegistry } from '../../pg/types-registry';
import type { ColumnInfo, RelationInfo, ReplicaIdentity, Row } from '../change';
import { tupleToRow } from '../logical/rows';
import type { TupleData } from '../logical/pgoutput';
import { SnapshotVisibility } from './snapshot';

/**
 * Reads a backfilled table in key order, one chunk at a time, into exactly the rows a live insert
 * of each row would give: the pool's sessions print values as the replication session does
 * (REPLICATION_SESSION_OPTIONS), values come back as PostgreSQL's text, undecoded, and go through
 * the stream's own decoder (tupleToRow, decodeValue, the same TypeRegistry resolution). Columns
 * are pgoutput's: no dropped or generated ones, in column order.
 *
 * Identifiers are quoted and values bound; the request's `where` is the only SQL a user gives (by
 * design, like Debezium's additional-conditions): it is wrapped in parentheses and runs in a READ
 * ONLY transaction.
 */

const SQL_DIR = join(__dirname, 'sql');
const RELATION_SQL = loadSql(SQL_DIR, 'relation.sql');
const SNAPSHOT_SQL = loadSql(SQL_DIR, 'snapshot.sql');
const VERSION_SQL = loadSql(SQL_DIR, 'version.sql');

const BEGIN_CHUNK_SQL = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';
const BEGIN_READ_ONLY_SQL = 'BEGIN READ ONLY';

/** pg's type parsers off: every value stays PostgreSQL's text, for our own decoder. */
const RAW_TEXT = { getTypeParser: () => (text: string) => text } as unknown as import('pg').CustomTypesConfig;

/** A snapshot that lists already-committed transactions in progress is taken again after this wait (ms)… */
const SETTLE_WAIT_MS = 5;
/** …for at most this long; then the chunk is given up and tried again later. */
const SETTLE_DEADLINE_MS = 30_000;

const IDENTITY: Record<string, ReplicaIdentity> = { d: 'default', n: 'nothing', f: 'full', i: 'index' };

/** The table as the chunk reader needs it: the stream's RelationInfo, and each column's type text. */
export interface BackfillRelation {
  relation: RelationInfo;
  /** format_type of each key column, in key order: `$n::type` binds the last key back. */
  keyTypes: string[];
}

export interface Chunk {
  rows: Row[];
  /** The last row's key columns as PostgreSQL printed them (the backfills table's last_key). */
  lastKey: string[] | null;
  snapshot: SnapshotVisibility;
  readAt: Date;
}

export class ChunkReader {
  private readonly registry = new TypeRegistry();
  private readonly catalog: Catalog;

  /** `pool`: sessions with REPLICATION_SESSION_OPTIONS (values print as in the stream). */
  constructor(private readonly pool: Pool) {
    this.catalog = new Catalog(pool, this.registry);
  }

  /** `server_version` as PostgreSQL prints it (supportsMessages reads it). */
  async serverVersion(): Promise<string> {
    const { rows } = await this.pool.query(VERSION_SQL);
    return rows[0].version as string;
  }

  /** The table now; undefined when it does not exist. Its user types are registered for decoding. */
  async relation(schema: string, table: string): Promise<BackfillRelation | undefined> {
    const { rows } = await this.pool.query(RELATION_SQL, [quoteTable(schema, table)]);
    if (!rows.length) return undefined;
    const { relid, replident } = rows[0] as { relid: number; replident: string };
    const cols = rows[0].columns as { name: string; typeOid: number; typeMod: number; type: string }[];
    const keys = await this.pool.query(TABLE_KEYS_SQL, [[relid]]);
    const keyColumns: string[] = keys.rows.length ? keys.rows[0].columns : [];
    await this.catalog.lookup({ id: relid, columns: cols });
    const replicaIdentity = IDENTITY[replident] ?? 'default';
    // pgoutput's flags: the replica identity's columns (every column with FULL).
    const columns: ColumnInfo[] = cols.map((c) => ({
      name: c.name, typeOid: c.typeOid, typeMod: c.typeMod, isKey: replicaIdentity === 'full' || keyColumns.includes(c.name),
    }));
    const typeOf = new Map(cols.map((c) => [c.name, c.type]));
    return {
      relation: { id: relid, schema, table, replicaIdentity, columns, keyColumns },
      keyTypes: keyColumns.map((k) => typeOf.get(k) ?? 'text'),
    };
  }

  /** The planner's estimate of the rows left (from `after`), read in a READ ONLY transaction. */
  async estimate(rel: BackfillRelation, where: string | null, after: string[] | null): Promise<number | null> {
    // A bound LIMIT keeps the statement on the extended protocol: one statement, whatever `where` holds.
    const { text, values } = selectSql(rel, where, after, Number.MAX_SAFE_INTEGER, 'SELECT 1');
    return this.readOnly(async (client) => {
      const { rows } = await client.query(`EXPLAIN (FORMAT JSON) ${text}`, values);
      const plan = (rows[0]['QUERY PLAN'] as { Plan: { 'Plan Rows': number } }[])[0]?.Plan;
      return plan ? Math.round(plan['Plan Rows']) : null;
    }, BEGIN_READ_ONLY_SQL);
  }

  /**
   * The next chunk after `after` (or from the start), in one short REPEATABLE READ READ ONLY
   * transaction whose snapshot the window needs (docs/backfill.md). `signal` ends the waits.
   */
  async read(rel: BackfillRelation, where: string | null, after: string[] | null, limit: number, signal: AbortSignal): Promise<Chunk> {
    const { text, values } = selectSql(rel, where, after, limit);
    const started = Date.now();
    for (;;) {
      const result = await this.readOnly(async (client) => {
        const { rows: [snap] } = await client.query(SNAPSHOT_SQL);
        if ((snap.settling as string[]).length > 0) return undefined;
        const readAt = new Date();
        const { rows } = await client.query<(string | null)[]>({ text, values, rowMode: 'array', types: RAW_TEXT });
        return { rows, snapshot: SnapshotVisibility.parse(snap.snapshot as string), readAt };
      }, BEGIN_CHUNK_SQL);
      if (result) return this.decode(rel, result.rows, result.snapshot, result.readAt);
      if (signal.aborted) throw signal.reason ?? new Error('aborted');
      if (Date.now() - started > SETTLE_DEADLINE_MS) {
        throw new Error(`transactions stayed committed but not yet visible for ${SETTLE_DEADLINE_MS} ms (a synchronous standby not answering?)`);
      }
      await new Promise((r) => setTimeout(r, SETTLE_WAIT_MS));
    }
  }

  private decode(rel: BackfillRelation, raw: (string | null)[][], snapshot: SnapshotVisibility, readAt: Date): Chunk {
    const { relation } = rel;
    const rows = raw.map((values) => {
      const tuple: TupleData = values.map((v) => (v === null ? { kind: 'n' } : { kind: 't', value: v }));
      return tupleToRow(relation, tuple, this.registry).row;
    });
    const last = raw[raw.length - 1];
    const keyIndexes = relation.keyColumns.map((k) => relation.columns.findIndex((c) => c.name === k));
    // Key columns are NOT NULL (primary key) or a unique index's: never null in practice.
    const lastKey = last ? keyIndexes.map((i) => last[i] ?? '') : null;
    return { rows, lastKey, snapshot, readAt };
  }

  private async readOnly<T>(work: (client: PoolClient) => Promise<T>, begin: string): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query(begin);
      try {
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw err;
      }
    } catch (err) {
      broken = true;
      throw err;
    } finally {
      client.release(broken ? true : undefined);
    }
  }
}

/**
 * `SELECT <columns> FROM t WHERE (k1, …) > ($1::type1, …) AND (<where>) ORDER BY k1, … LIMIT n`:
 * the row-value comparison walks the key's index from the last key on.
 */
export function selectSql(rel: BackfillRelation, where: string | null, after: string[] | null, limit?: number, select?: string): { text: string; values: unknown[] } {
  const { relation, keyTypes } = rel;
  const keys = relation.keyColumns.map(quoteIdent);
  const values: unknown[] = [];
  const conditions: string[] = [];
  if (after) {
    const params = after.map((v, i) => {
      values.push(v);
      return `$${values.length}::${keyTypes[i]}`;
    });
    conditions.push(`(${keys.join(', ')}) > (${params.join(', ')})`);
  }
  if (where !== null && where.trim() !== '') conditions.push(`(${where})`);
  let text = `${select ?? `SELECT ${relation.columns.map((c) => quoteIdent(c.name)).join(', ')}`} FROM ${quoteTable(relation.schema, relation.table)}`;
  if (conditions.length) text += ` WHERE ${conditions.join(' AND ')}`;
  if (limit !== undefined) {
    values.push(limit);
    text += ` ORDER BY ${keys.join(', ')} LIMIT $${values.length}`;
  }
  return { text, values };
}
