/** Hand-built changes and relations for the event format tests. */
import type {
  Change,
  ColumnInfo,
  DeleteChange,
  InsertChange,
  RelationInfo,
  TruncateChange,
  UpdateChange,
} from '../../../src/sources/change';
import type { TableConfig } from '../../../src/config/types';

// PostgreSQL type OIDs used below.
export const OID = {
  bool: 16,
  bytea: 17,
  int8: 20,
  int4: 23,
  text: 25,
  jsonb: 3802,
  float8: 701,
  numeric: 1700,
  timestamptz: 1184,
  uuid: 2950,
  int4Array: 1007,
} as const;

function col(name: string, typeOid: number, isKey = false): ColumnInfo {
  return { name, typeOid, typeMod: -1, isKey };
}

export function relation(
  schema: string,
  table: string,
  columns: ColumnInfo[],
  replicaIdentity: RelationInfo['replicaIdentity'] = 'default',
): RelationInfo {
  return {
    id: 16384,
    schema,
    table,
    replicaIdentity,
    columns,
    keyColumns: columns.filter((c) => c.isKey).map((c) => c.name),
  };
}

export const questions = relation('public', 'polls_question', [
  col('id', OID.int4, true),
  col('question_text', OID.text),
  col('pub_date', OID.timestamptz),
  col('meta', OID.jsonb),
]);

/** Composite key declared as (order_id, line); columns listed in a different order on purpose. */
export const orderLines = relation('shop', 'order_line', [
  col('line', OID.int4, true),
  col('sku', OID.text),
  col('order_id', OID.int8, true),
]);
// Key order is the key's, not the column order: the capture side gives keyColumns in key order.
orderLines.keyColumns = ['order_id', 'line'];

export const auditLog = relation('public', 'audit_log', [col('message', OID.text)], 'nothing');

export const questionsTable: TableConfig = {
  table: 'public.polls_question',
  schema: 'public',
  name: 'polls_question',
  app: 'polls',
  model: 'question',
};

export function tableOf(rel: RelationInfo): TableConfig {
  return { table: `${rel.schema}.${rel.table}`, schema: rel.schema, name: rel.table, app: rel.schema, model: rel.table };
}

export const COMMIT_TIME = new Date('2020-12-01T09:43:00.250Z');

const base = {
  commitLsn: 0x16b3748n,
  endLsn: 0x16b3780n,
  commitTime: COMMIT_TIME,
  xid: 771,
  ordinal: 3,
};

export const questionRow = {
  id: 22,
  question_text: 'How are you?',
  pub_date: '2020-12-01T09:43:00Z',
  meta: { tags: ['a', 'b'], votes: 1 },
};

export function insertOf(rel: RelationInfo, row: Record<string, unknown>, missingColumns: string[] = []): InsertChange {
  return { ...base, kind: 'insert', relation: rel, new: row, missingColumns };
}

export function updateOf(
  rel: RelationInfo,
  row: Record<string, unknown>,
  old?: Record<string, unknown>,
  oldIsKeyOnly = false,
  missingColumns: string[] = [],
): UpdateChange {
  return { ...base, kind: 'update', relation: rel, new: row, old, oldIsKeyOnly, missingColumns };
}

export function deleteOf(rel: RelationInfo, old: Record<string, unknown>, oldIsKeyOnly = true): DeleteChange {
  return { ...base, kind: 'delete', relation: rel, old, oldIsKeyOnly, missingColumns: [] };
}

export function truncateOf(rel: RelationInfo, cascade = false, restartIdentity = true): TruncateChange {
  return { ...base, kind: 'truncate', relation: rel, cascade, restartIdentity };
}

/** The event as it goes over the wire in structured mode: undefined attributes dropped. */
export function plain(event: { toString(): string }): Record<string, unknown> {
  return JSON.parse(event.toString()) as Record<string, unknown>;
}

export type { Change };
