import { join } from 'node:path';
import type { Pool } from 'pg';
import type { TableConfig } from '../config/types';
import { quoteTable } from './catalog-sql';
import { loadSql } from './sql-file';
import { registerFromPgType, USER_TYPES_SQL, type TypeRegistry } from './types-registry';

const SQL_DIR = join(__dirname, 'sql');

/** Type OIDs of the captured tables' columns, so user types are known before the first row. */
export const TABLE_COLUMN_TYPES_SQL = loadSql(SQL_DIR, 'table-column-types.sql');

/** The key of each table, in key order: the primary key, else the replica identity index. */
export const TABLE_KEYS_SQL = loadSql(SQL_DIR, 'table-keys.sql');

export const TABLE_OIDS_SQL = loadSql(SQL_DIR, 'table-oids.sql');

interface RelationLike {
  id: number;
  columns: { typeOid: number }[];
}

/**
 * What decoding needs from the catalog and pgoutput does not send: user types (enums, domains,
 * arrays of them) and each table's key columns. Loaded up front for the configured tables, and
 * again when a Relation message names something new (an ALTER TABLE while running).
 */
export class Catalog {
  private readonly keys = new Map<number, string[]>();

  constructor(
    private readonly pool: Pool,
    private readonly registry: TypeRegistry,
  ) {}

  async preload(tables: readonly TableConfig[]): Promise<void> {
    const names = tables.map((t) => quoteTable(t.schema, t.name));
    const { rows } = await this.pool.query(TABLE_COLUMN_TYPES_SQL, [names]);
    await this.resolveTypes(rows.map((r: { oid: number }) => r.oid));
    const oids = await this.pool.query(TABLE_OIDS_SQL, [names]);
    await this.resolveKeys(oids.rows.map((r: { relid: number }) => r.relid));
  }

  needsLookup(relation: RelationLike): boolean {
    return !this.keys.has(relation.id) || relation.columns.some((c) => !this.registry.has(c.typeOid));
  }

  async lookup(relation: RelationLike): Promise<void> {
    await this.resolveTypes(relation.columns.map((c) => c.typeOid));
    await this.resolveKeys([relation.id]);
  }

  /** Key columns in key order; empty when the table has no primary key or identity index. */
  keyColumns(relationId: number): string[] | undefined {
    return this.keys.get(relationId);
  }

  private async resolveKeys(relids: number[]): Promise<void> {
    const { rows } = await this.pool.query(TABLE_KEYS_SQL, [relids]);
    for (const id of relids) this.keys.set(id, []);
    for (const r of rows as { relid: number; columns: string[] }[]) this.keys.set(r.relid, r.columns);
  }

  private async resolveTypes(oids: number[]): Promise<void> {
    let todo = [...new Set(oids)].filter((oid) => !this.registry.has(oid));
    for (let depth = 0; todo.length && depth < 5; depth++) {
      const { rows } = await this.pool.query(USER_TYPES_SQL, [todo]);
      registerFromPgType(this.registry, rows);
      const next: number[] = rows.flatMap((r: { typelem: number; typbasetype: number }) => [Number(r.typelem), Number(r.typbasetype)]);
      todo = [...new Set(next)].filter((oid) => oid && !this.registry.has(oid));
    }
  }
}
