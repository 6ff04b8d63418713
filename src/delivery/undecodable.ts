import { changeSequence, formatLsn, type UndecodableChange } from '../sources/change';
import { errorMessage } from '../errors';

/** What the dead-letter table keeps of a change that never became an event. */
export interface UndecodableRecord {
  /** The id its event would have had (the change's position; see README "The event"). */
  eventId: string;
  source: string | null;
  partitionKey: string | null;
  commitLsn: bigint;
  /** JSON text: the table, the kind, the position and the row as far as it is known. */
  raw: string;
  /** Why it could not be decoded or built, with the error code when there is one. */
  error: string;
}

/** Stores a record durably; resolves once stored, rejects only when `signal` aborts (shutdown). */
export type UndecodableHandler = (record: UndecodableRecord, signal: AbortSignal) => Promise<void>;

export function undecodableRecord(change: UndecodableChange): UndecodableRecord {
  const { relation } = change;
  const code = (change.error as { code?: string }).code;
  return {
    eventId: changeSequence(change),
    source: null,
    partitionKey: null,
    commitLsn: change.commitLsn,
    raw: safeJson({
      ...(relation ? { table: `${relation.schema}.${relation.table}` } : { prefix: change.prefix }),
      kind: change.kind,
      commitLsn: formatLsn(change.commitLsn),
      commitTime: change.commitTime.toISOString(),
      xid: change.xid,
      ordinal: change.ordinal,
      row: change.raw,
    }),
    error: code ? `${code}: ${errorMessage(change.error)}` : errorMessage(change.error),
  };
}

const bigintAsText = (_key: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

/** JSON of the record: bigints as text; a column value that will not serialise, as its String(). */
function safeJson(record: { row: Record<string, unknown> } & Record<string, unknown>): string {
  try {
    return JSON.stringify(record, bigintAsText);
  } catch {
    const row: Record<string, unknown> = {};
    for (const [column, value] of Object.entries(record.row)) {
      try {
        row[column] = JSON.parse(JSON.stringify(value, bigintAsText) ?? 'null');
      } catch {
        row[column] = String(value);
      }
    }
    return JSON.stringify({ ...record, row });
  }
}
