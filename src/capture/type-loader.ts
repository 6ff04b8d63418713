import type { Pool } from 'pg';
import type { TableConfig } from '../config/types';
import { quoteTable } from './catalog-sql';
import { registerFromPgType, USER_TYPES_SQL, type TypeRegistry } from './types-registry';

/** Type OIDs of the captured tables' columns, so user types are known before the first row. */
export const TABLE_COLUMN_TYPES_SQL = `SELECT DISTINCT a.atttypid::int AS oid
FROM pg_attribute a WHERE a.attrelid = ANY($1::regclass[]) AND a.attnum > 0 AND NOT a.attisdropped`;

/**
 * Resolves type OIDs the registry does not know (enums, domains, arrays of them, extension types)
 * from pg_type, following element and base types until everything is known.
 */
export class TypeLoader {
  constructor(
    private readonly pool: Pool,
    private readonly registry: TypeRegistry,
  ) {}

  async preload(tables: readonly TableConfig[]): Promise<void> {
    const names = tables.map((t) => quoteTable(t.schema, t.name));
    const { rows } = await this.pool.query(TABLE_COLUMN_TYPES_SQL, [names]);
    await this.resolve(rows.map((r: { oid: number }) => r.oid));
  }

  needsLookup(relation: { columns: { typeOid: number }[] }): boolean {
    return relation.columns.some((c) => !this.registry.has(c.typeOid));
  }

  async lookup(relation: { columns: { typeOid: number }[] }): Promise<void> {
    await this.resolve(relation.columns.map((c) => c.typeOid));
  }

  private async resolve(oids: number[]): Promise<void> {
    let todo = [...new Set(oids)].filter((oid) => !this.registry.has(oid));
    for (let depth = 0; todo.length && depth < 5; depth++) {
      const { rows } = await this.pool.query(USER_TYPES_SQL, [todo]);
      registerFromPgType(this.registry, rows);
      const next: number[] = rows.flatMap((r: { typelem: number; typbasetype: number }) => [Number(r.typelem), Number(r.typbasetype)]);
      todo = [...new Set(next)].filter((oid) => oid && !this.registry.has(oid));
    }
  }
}
