import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from 'pg';
import type { Config } from '../config/types';
import { checkSchemaName, renderDdl } from '../delivery/dead-letters/ddl';
import { quoteIdent } from './catalog-sql';
import type { SetupStep } from '../sources/logical/setup';

/**
 * The slot record: which replication slot this source reads and how far it acknowledged, kept in
 * a small table of the product's schema (`deadLetters.schema`). Its contract is the header of
 * sql/slot-record.sql; slot-guard.ts compares it with pg_replication_slots to tell a gap.
 */
export const SLOT_RECORD_TABLE = 'capture_slots';
const DDL_FILE = 'slot-record.sql';

export interface SlotRecord {
  slotName: string;
  database: string;
  /** Where the slot began when we created it; null when it was found and adopted. */
  createdLsn: string | null;
  createdAt: Date;
  acknowledgedLsn: string | null;
  acknowledgedAt: Date | null;
}

export interface SlotRecordState {
  tableExists: boolean;
  /** The row of `capture.slot`, if any. */
  record: SlotRecord | null;
  /** Rows of other slots (other sources on this database share the table). */
  otherRecords: number;
}

export const SLOT_RECORD_TABLE_EXISTS_SQL =
  `SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL AS table_exists`;

const SELECT_SQL = `SELECT slot_name, database, created_lsn::text AS created_lsn, created_at,
  acknowledged_lsn::text AS acknowledged_lsn, acknowledged_at
FROM :schema.:table`;

/** After pg_create_logical_replication_slot: the new slot's position is where it began. */
const RECORD_CREATED_SQL = `INSERT INTO :schema.:table
  (slot_name, database, created_lsn, created_at, acknowledged_lsn, acknowledged_at)
SELECT slot_name, current_database(), confirmed_flush_lsn, now(), NULL, NULL
FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()
ON CONFLICT (slot_name) DO UPDATE SET database = EXCLUDED.database, created_lsn = EXCLUDED.created_lsn,
  created_at = EXCLUDED.created_at, acknowledged_lsn = NULL, acknowledged_at = NULL`;

/** A slot that was there before anything was recorded: remembered from its current position. */
const RECORD_FOUND_SQL = `INSERT INTO :schema.:table
  (slot_name, database, created_lsn, created_at, acknowledged_lsn, acknowledged_at)
SELECT slot_name, current_database(), NULL, now(), confirmed_flush_lsn, now()
FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()
ON CONFLICT (slot_name) DO NOTHING`;

/**
 * Moves forward only, and never below where the recorded slot began: a process still acknowledging
 * an older slot (one `setup --recreate-slot` replaced) cannot rewrite the new slot's record.
 */
const ACKNOWLEDGED_SQL = `UPDATE :schema.:table SET acknowledged_lsn = $2::pg_lsn, acknowledged_at = $3
WHERE slot_name = $1
  AND (created_lsn IS NULL OR created_lsn <= $2::pg_lsn)
  AND (acknowledged_lsn IS NULL OR acknowledged_lsn < $2::pg_lsn)`;

const DELETE_SQL = `DELETE FROM :schema.:table WHERE slot_name = $1`;
const DROP_SQL = `DROP TABLE IF EXISTS :schema.:table`;

/** A statement above with the table's quoted identifiers in place. */
function sqlFor(sql: string, config: Config): string {
  return renderDdl(sql, { schema: quoteIdent(config.deadLetters.schema), table: quoteIdent(SLOT_RECORD_TABLE) });
}

export function slotRecordTableName(config: Config): string {
  return `${config.deadLetters.schema}.${SLOT_RECORD_TABLE}`;
}

export async function inspectSlotRecord(client: Pick<Client, 'query'>, config: Config): Promise<SlotRecordState> {
  const { rows } = await client.query(SLOT_RECORD_TABLE_EXISTS_SQL, [config.deadLetters.schema, SLOT_RECORD_TABLE]);
  if (!rows[0].table_exists) return { tableExists: false, record: null, otherRecords: 0 };
  const all = (await client.query(sqlFor(SELECT_SQL, config))).rows;
  const mine = all.find((r) => r.slot_name === config.capture.slot);
  return {
    tableExists: true,
    record: mine
      ? {
          slotName: mine.slot_name, database: mine.database, createdLsn: mine.created_lsn, createdAt: mine.created_at,
          acknowledgedLsn: mine.acknowledged_lsn, acknowledgedAt: mine.acknowledged_at,
        }
      : null,
    otherRecords: all.length - (mine ? 1 : 0),
  };
}

let cachedDdl: string | undefined;

function ddlText(): string {
  const file = join(__dirname, 'sql', DDL_FILE);
  try {
    cachedDdl ??= readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(
      `${file} is missing: the build must copy the .sql files next to the compiled code ` +
        `(node scripts/copy-assets.js after tsc) (${(err as Error).message})`,
    );
  }
  return cachedDdl;
}

/** The table, when missing (one idempotent step, like the dead-letter table). */
export function planSlotRecordTable(state: Pick<SlotRecordState, 'tableExists'>, config: Config): SetupStep[] {
  if (state.tableExists) return [];
  checkSchemaName(config.deadLetters.schema);
  return [{ description: `create slot record table ${slotRecordTableName(config)} (${DDL_FILE})`, sql: sqlFor(ddlText(), config) }];
}

/** Runs right after the step that creates the slot: remembers where it began. */
export function recordCreatedSlotStep(config: Config): SetupStep {
  return {
    description: `record replication slot ${config.capture.slot} in ${slotRecordTableName(config)}`,
    sql: sqlFor(RECORD_CREATED_SQL, config),
    params: [config.capture.slot],
  };
}

/** A slot that exists but was never recorded (made by hand, or by a version without the record). */
export function recordFoundSlotStep(config: Config): SetupStep {
  return {
    description: `record existing replication slot ${config.capture.slot} in ${slotRecordTableName(config)}`,
    sql: sqlFor(RECORD_FOUND_SQL, config),
    params: [config.capture.slot],
  };
}

/** `teardown`: forget the slot; drop the table when no other slot is recorded in it. */
export function planSlotRecordTeardown(state: SlotRecordState, config: Config): SetupStep[] {
  if (!state.tableExists) return [];
  const steps: SetupStep[] = [];
  if (state.record) {
    steps.push({
      description: `forget replication slot ${config.capture.slot} (${slotRecordTableName(config)})`,
      sql: sqlFor(DELETE_SQL, config),
      params: [config.capture.slot],
    });
  }
  if (state.otherRecords === 0) {
    steps.push({ description: `drop slot record table ${slotRecordTableName(config)} (empty)`, sql: sqlFor(DROP_SQL, config) });
  }
  return steps;
}

/** The UPDATE that records an acknowledged position: $1 slot, $2 LSN text, $3 when. */
export function acknowledgedSql(config: Config): string {
  return sqlFor(ACKNOWLEDGED_SQL, config);
}
