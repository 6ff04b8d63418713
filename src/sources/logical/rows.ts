import { ErrorCodes, PgceError } from '../../errors';
import type { RelationInfo, Row } from '../change';
import type { RelationMessage, TupleData } from './pgoutput';
import type { TypeRegistry } from '../../pg/types-registry';
import { decodeValue } from '../../pg/values';

/** A Relation message as the change model's RelationInfo (key columns in column order). */
export function relationFromMessage(msg: RelationMessage): RelationInfo {
  const columns = msg.columns.map(({ name, typeOid, typeMod, isKey }) => ({ name, typeOid, typeMod, isKey }));
  return {
    id: msg.id,
    schema: msg.schema,
    table: msg.table,
    replicaIdentity: msg.replicaIdentity,
    columns,
    keyColumns: columns.filter((c) => c.isKey).map((c) => c.name),
  };
}

/**
 * Decodes one tuple against its relation. Unchanged TOAST values ('u') were not sent: they are
 * left out of `row` and named in `missingColumns`, never faked as null.
 */
export function tupleToRow(
  relation: RelationInfo,
  tuple: TupleData,
  registry: TypeRegistry,
): { row: Row; missingColumns: string[] } {
  const columns = relation.columns;
  if (tuple.length !== columns.length) {
    throw new PgceError(
      ErrorCodes.PROTOCOL,
      `tuple for ${relation.schema}.${relation.table} has ${tuple.length} columns, its Relation message announced ${columns.length}`,
      { detail: { relation: relation.id } },
    );
  }
  const row: Row = {};
  const missingColumns: string[] = [];
  for (let i = 0; i < columns.length; i++) {
    const value = tuple[i];
    const column = columns[i];
    switch (value.kind) {
      case 't':
        row[column.name] = decodeValue(value.value, column.typeOid, registry);
        break;
      case 'n':
        row[column.name] = null;
        break;
      case 'u':
        missingColumns.push(column.name);
        break;
      case 'b':
        row[column.name] = value.value.toString('base64');
        break;
    }
  }
  return { row, missingColumns };
}
