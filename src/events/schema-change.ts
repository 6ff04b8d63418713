/**
 * The `data` of a schema_change event (README "Schema-change events"), the same in every format:
 * the old and new column lists and what differs between them by column name. pgoutput names
 * columns, not their attribute numbers, so a rename reads as one column dropped and one added.
 */
import type { SchemaChange, SchemaColumn } from '../sources/change';

export interface ColumnDiff {
  name: string;
  old: Omit<SchemaColumn, 'name'>;
  new: Omit<SchemaColumn, 'name'>;
}

export interface SchemaChangeEventData {
  db_table: string;
  old: SchemaColumn[];
  new: SchemaColumn[];
  /** Names in `new` and not in `old`, in column order. */
  added: string[];
  /** Names in `old` and not in `new`, in column order. */
  dropped: string[];
  /** Columns in both whose type or key changed. */
  changed: ColumnDiff[];
}

export function diffColumns(old: readonly SchemaColumn[], now: readonly SchemaColumn[]): Pick<SchemaChangeEventData, 'added' | 'dropped' | 'changed'> {
  const before = new Map(old.map((c) => [c.name, c]));
  const after = new Set(now.map((c) => c.name));
  const changed: ColumnDiff[] = [];
  for (const c of now) {
    const o = before.get(c.name);
    if (o && (o.type !== c.type || o.key !== c.key)) {
      changed.push({ name: c.name, old: { type: o.type, key: o.key }, new: { type: c.type, key: c.key } });
    }
  }
  return {
    added: now.filter((c) => !before.has(c.name)).map((c) => c.name),
    dropped: old.filter((c) => !after.has(c.name)).map((c) => c.name),
    changed,
  };
}

export function schemaChangeData(change: SchemaChange): SchemaChangeEventData {
  return {
    db_table: change.relation.table,
    old: change.oldColumns,
    new: change.newColumns,
    ...diffColumns(change.oldColumns, change.newColumns),
  };
}
