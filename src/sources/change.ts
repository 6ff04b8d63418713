/**
 * The decoded change model shared by capture, events and delivery. Capture produces these from the
 * pgoutput stream; nothing downstream knows about the wire format.
 */

/** A column as announced by a pgoutput Relation message. */
export interface ColumnInfo {
  name: string;
  typeOid: number;
  typeMod: number;
  /** Part of the replica identity (usually the primary key). */
  isKey: boolean;
}

export type ReplicaIdentity = 'default' | 'nothing' | 'full' | 'index';

export interface RelationInfo {
  /** The relation's OID, as pgoutput sends it. */
  id: number;
  schema: string;
  table: string;
  replicaIdentity: ReplicaIdentity;
  columns: ColumnInfo[];
  /** Names of the key columns, in column order. Empty when the table has no identity. */
  keyColumns: string[];
}

/** A row as JSON-natural values (README, "The event"). */
export type Row = Record<string, unknown>;

/** Where a change sits in the stream: the same on every replay of its transaction. */
interface ChangePosition {
  /** LSN of the transaction's commit record: identical on every replay of the transaction. */
  commitLsn: bigint;
  commitTime: Date;
  xid: number;
  /** 0-based position of this change inside its transaction. */
  ordinal: number;
}

interface ChangeBase extends ChangePosition {
  relation: RelationInfo;
}

export interface InsertChange extends ChangeBase {
  kind: 'insert';
  new: Row;
  /** Columns whose value was not sent (unchanged TOAST); absent from `new`, never faked. */
  missingColumns: string[];
  /** A row that already existed, read by a backfill (README "Backfill"), not a live insert. */
  backfill?: BackfillMark;
}

/** What marks a backfilled row: its backfill, and its event id, the same on every redelivery. */
export interface BackfillMark {
  /** The backfill's id (the backfills table). */
  id: string;
  /** Deterministic for the (backfill, row) pair. */
  eventId: string;
}

export interface UpdateChange extends ChangeBase {
  kind: 'update';
  new: Row;
  /** The previous row: whole with REPLICA IDENTITY FULL, key columns only when the key changed. */
  old?: Row;
  /** True when `old` carries only the replica identity columns. */
  oldIsKeyOnly: boolean;
  missingColumns: string[];
}

export interface DeleteChange extends ChangeBase {
  kind: 'delete';
  /** The deleted row: key columns at least (all columns with REPLICA IDENTITY FULL). */
  old: Row;
  oldIsKeyOnly: boolean;
  missingColumns: string[];
}

export interface TruncateChange extends ChangeBase {
  kind: 'truncate';
  cascade: boolean;
  restartIdentity: boolean;
}

// --- schema-change events (README "Schema-change events") ---

/** A column as a schema_change event names it. */
export interface SchemaColumn {
  name: string;
  /** The type as PostgreSQL's format_type prints it: `integer`, `character varying(20)`. */
  type: string;
  /** Part of the table's key (the key the events' subject and partition key use). */
  key: boolean;
}

/**
 * A captured table's columns changed: pgoutput sent a Relation message whose columns differ from
 * the ones known for that relation. It carries the position of the first change in the new shape
 * (same commitLsn and ordinal; it takes no ordinal of its own, so row ids do not depend on
 * `events.schemaChanges`) and is handed over right before it.
 */
export interface SchemaChange extends ChangeBase {
  kind: 'schema';
  oldColumns: SchemaColumn[];
  newColumns: SchemaColumn[];
}
// --- end schema-change events ---

export type RowChange = InsertChange | UpdateChange | DeleteChange;
/** A change of a captured table: its rows, or (schema-change events) its columns. */
export type TableChange = RowChange | TruncateChange | SchemaChange;

// --- Application events (README "Application events") ---------------------------------------

/** What the application emitted with pgcloudevents.emit(), checked (src/sources/app-event.ts). */
export interface AppEvent {
  type: string;
  subject: string | null;
  /** The JSON value as sent, numbers exact (RawJson where JavaScript would round them). */
  data: unknown;
  /** CloudEvents extension attributes, names checked (lower-case a-z0-9). */
  extensions: Record<string, string | number | boolean>;
}

/**
 * A transactional logical message with the configured prefix, emitted in the application's
 * transaction: it arrives exactly when that transaction commits, in its place among the rows.
 */
export interface MessageChange extends ChangePosition {
  kind: 'message';
  prefix: string;
  event: AppEvent;
}

export type Change = TableChange | MessageChange;
// --- end of application events ----------------------------------------------------------------

/**
 * A row change that could not be decoded, or whose event could not be built (an unexpected value,
 * a bug): it is dead-lettered with what is known of it and the reason, so nothing stalls and
 * nothing is dropped without a record (README, "Dead letters").
 */
export interface UndecodableChange extends ChangePosition {
  kind: Change['kind'];
  /** The table the change belongs to; absent for an application event (`kind: 'message'`). */
  relation?: RelationInfo;
  /** An application event's message prefix. */
  prefix?: string;
  /**
   * The row as far as it is known: the decoded columns when the event could not be built, or each
   * column's text as PostgreSQL sent it when decoding failed (`{ "unchanged": true }` for TOAST);
   * for an application event, `{ content }`: the message's text as written.
   */
  raw: Record<string, unknown>;
  error: Error;
}

/** `0/16B3748` style, as PostgreSQL prints LSNs. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(text)}`);
  return (BigInt('0x' + m[1]) << 32n) | BigInt('0x' + m[2]);
}

/**
 * Position of a change in the stream, string-sortable: 16 hex digits of the commit LSN, then the
 * 8-digit ordinal. Equal on every redelivery, so it doubles as the event id.
 */
export function changeSequence(change: Pick<ChangePosition, 'commitLsn' | 'ordinal'> & { kind?: string; backfill?: BackfillMark }): string {
  // A backfilled row is not a position in the stream: its id names the (backfill, row) pair.
  if (change.backfill) return change.backfill.eventId;
  const sequence = `${change.commitLsn.toString(16).toUpperCase().padStart(16, '0')}-${String(change.ordinal).padStart(8, '0')}`;
  // A schema change shares its position with the first change in the new shape: its own id.
  return change.kind === 'schema' ? `${sequence}-schema` : sequence;
}
