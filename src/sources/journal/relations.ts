import { join } from 'node:path';
import type { Pool } from 'pg';
import type { TableConfig } from '../../config/types';
import { Catalog } from '../../pg/catalog';
import { loadSql } from '../../pg/sql-file';
import type { TypeRegistry } from '../../pg/types-registry';
import type { RelationInfo, ReplicaIdentity } from '../change';

const RELATION_SQL = loadSql(join(__dirname, 'sql'), 'relation.sql');

const IDENTITY: Record<string, ReplicaIdentity> = { d: 'default', n: 'nothing', f: 'full', i: 'index' };

interface Described {
  relation: RelationInfo;
  /** Every column's name, generated ones included: a row member outside it means the table changed. */
  names: Set<string>;
}

/**
 * The journal's tables as the change model describes them: what pgoutput's Relation messages tell
 * logical mode (columns, types, replica identity), read from the catalog instead, once per table
 * and again when a row shows columns the description lacks (an ALTER TABLE ADD COLUMN). User types
 * and key columns come from the same Catalog as logical mode's.
 */
export class Relations {
  private readonly described = new Map<number, Described>();
  private readonly catalog: Catalog;

  constructor(private readonly pool: Pool, registry: TypeRegistry) {
    this.catalog = new Catalog(pool, registry);
  }

  preload(tables: readonly TableConfig[]): Promise<void> {
    return this.catalog.preload(tables);
  }

  /** The known description, or undefined: call `describe` first. */
  get(relid: number, members?: readonly string[]): RelationInfo | undefined {
    const d = this.described.get(relid);
    if (!d) return undefined;
    if (members && members.some((m) => !d.names.has(m))) return undefined;
    return d.relation;
  }

  /** Reads the table's description now; undefined when the table is gone. */
  async describe(relid: number): Promise<RelationInfo | undefined> {
    const { rows } = await this.pool.query(RELATION_SQL, [relid]);
    if (!rows.length) return undefined;
    const head = rows[0];
    const replicaIdentity = IDENTITY[head.replident] ?? 'default';
    const columns = rows
      .filter((r) => !r.generated)
      .map((r) => ({ name: r.column as string, typeOid: r.type_oid as number, typeMod: r.type_mod as number, isKey: replicaIdentity === 'full' || Boolean(r.in_index) }));
    await this.catalog.lookup({ id: relid, columns });
    const relation: RelationInfo = {
      id: relid, schema: head.schema, table: head.name, replicaIdentity, columns, keyColumns: this.catalog.keyColumns(relid) ?? [],
    };
    this.described.set(relid, { relation, names: new Set(rows.map((r) => r.column as string)) });
    return relation;
  }
}
