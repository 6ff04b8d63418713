/**
 * Schema-change detection (README "Schema-change events"): pgoutput sends a Relation message the
 * first time a session uses a relation and again after its definition changed. Whether a Relation
 * message is a change is decided against the columns this process last knew for that relation
 * *at that position in the stream*, so that a reconnect, which replays from the acknowledged
 * position (and sends each relation's Relation message again, maybe in an older shape), neither
 * invents a change nor loses one that was not acknowledged yet: a replayed change finds its own
 * record and is reported again with the same id.
 */
import { changeSequence, type RelationInfo, type SchemaColumn } from '../change';

interface Shape {
  /** changeSequence of the first change in this shape: sortable, unique per Relation message. */
  position: string;
  commitLsn: bigint;
  columns: SchemaColumn[];
  /** The shape this one replaced; absent for the first shape this process saw (no change known). */
  old?: SchemaColumn[];
}

/** The columns as a schema_change event lists them; `key` from the table's key, not pgoutput's flags. */
export function schemaColumns(relation: RelationInfo, typeName: (column: { typeOid: number; typeMod: number }) => string): SchemaColumn[] {
  const keys = new Set(relation.keyColumns);
  return relation.columns.map((c) => ({ name: c.name, type: typeName(c), key: keys.has(c.name) }));
}

export function sameColumns(a: readonly SchemaColumn[], b: readonly SchemaColumn[]): boolean {
  return a.length === b.length && a.every((c, i) => c.name === b[i].name && c.type === b[i].type && c.key === b[i].key);
}

/** Each relation's shapes by stream position, from the first this process saw. */
export class SchemaHistory {
  private readonly shapes = new Map<number, Shape[]>();

  /**
   * Records the relation's columns as used from the change at (commitLsn, ordinal) on. Returns the
   * columns they replaced when that is a change, else undefined: the first shape this process
   * sees of a relation is no change (nothing to compare with), nor is one equal to the shape
   * before it.
   */
  observe(relationId: number, columns: SchemaColumn[], commitLsn: bigint, ordinal: number): SchemaColumn[] | undefined {
    const position = changeSequence({ commitLsn, ordinal });
    let list = this.shapes.get(relationId);
    if (!list) this.shapes.set(relationId, (list = []));
    let i = list.length;
    while (i > 0 && list[i - 1].position > position) i--;
    const same = list[i - 1];
    // Seen at this very position before (a replay): the same answer as then.
    if (same && same.position === position && sameColumns(same.columns, columns)) return same.old;
    if (same && same.position === position) list.splice(--i, 1);
    const before = list[i - 1];
    if (before && sameColumns(before.columns, columns)) return undefined;
    const shape: Shape = { position, commitLsn, columns, ...(before && { old: before.columns }) };
    list.splice(i, 0, shape);
    return shape.old;
  }

  /**
   * Forgets shapes no replay can reach: a reconnect starts after `acknowledged`, so of the shapes
   * that began at or before it only the latest is still needed (to compare with).
   */
  prune(acknowledged: bigint): void {
    for (const list of this.shapes.values()) {
      let last = -1;
      for (let i = 0; i < list.length && list[i].commitLsn <= acknowledged; i++) last = i;
      if (last > 0) list.splice(0, last);
    }
  }
}
