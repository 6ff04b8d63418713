import { join } from 'node:path';
import type { Pool } from 'pg';
import { loadSql } from './sql-file';

export const TYPE_NAMES_SQL = loadSql(join(__dirname, 'sql'), 'type-names.sql');

interface TypedColumn {
  typeOid: number;
  typeMod: number;
}

/**
 * Column types by name as PostgreSQL prints them (format_type), for schema_change events. pgoutput
 * sends only the type's OID and modifier; the names are read from the catalog once per pair and
 * kept (a pair's name never changes, bar a user type renamed, which is not a column change).
 */
export class TypeNames {
  private readonly names = new Map<string, string>();

  constructor(private readonly pool: Pick<Pool, 'query'>) {}

  /** True when some column's type has no name yet: `lookup` must run before `name`. */
  missing(columns: readonly TypedColumn[]): boolean {
    return columns.some((c) => !this.names.has(pairKey(c)));
  }

  async lookup(columns: readonly TypedColumn[]): Promise<void> {
    const todo = columns.filter((c) => !this.names.has(pairKey(c)));
    if (todo.length === 0) return;
    const { rows } = await this.pool.query<{ oid: number; mod: number; name: string | null }>(
      TYPE_NAMES_SQL, [todo.map((c) => c.typeOid), todo.map((c) => c.typeMod)],
    );
    for (const r of rows) this.names.set(pairKey({ typeOid: Number(r.oid), typeMod: Number(r.mod) }), r.name ?? `oid ${r.oid}`);
  }

  /** The type's name; a pair never looked up (a bug) reads `oid <n>` rather than failing capture. */
  name(column: TypedColumn): string {
    return this.names.get(pairKey(column)) ?? `oid ${column.typeOid}`;
  }

  /** Test seam and preload: a known name. */
  set(column: TypedColumn, name: string): void {
    this.names.set(pairKey(column), name);
  }
}

function pairKey(c: TypedColumn): string {
  return `${c.typeOid}:${c.typeMod}`;
}
