import knexFactory, { type Knex } from 'knex';
import type { Config } from '../config/types';
import { quoteIdent } from './catalog-sql';
import { SLOT_RECORD_TABLE } from './schema/names';
import type { SetupStep } from '../sources/logical/setup';

/**
 * The slot record: which replication slot this source reads and how far it acknowledged, kept in
 * a small table of the product's schema (`deadLetters.schema`), made by the schema's migrations
 * (src/pg/schema/migrations/000003-capture-slots.ts states its columns). slot-guard.ts compares
 * it with pg_replication_slots to tell a gap. Queries go through knex.
 */
export { SLOT_RECORD_TABLE };

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
  `SELECT to_regclass(format('%I.%I', ?::text, ?::text)) IS NOT NULL AS table_exists`;

/**
 * Set-up steps are SQL that `setup --dry-run` prints and `applySteps` runs on the set-up
 * connection: knex only compiles them (no connection of its own).
 */
const compiler = knexFactory({ client: 'pg' });

/**
 * After pg_create_logical_replication_slot: the new slot's position is where it began. An
 * INSERT … SELECT from the catalog with an upsert of expressions: `knex.raw`. ? = the slot.
 */
const RECORD_CREATED_SQL = (t: string) => `INSERT INTO ${t}
  (slot_name, database, created_lsn, created_at, acknowledged_lsn, acknowledged_at)
SELECT slot_name, current_database(), confirmed_flush_lsn, now(), NULL, NULL
FROM pg_replication_slots WHERE slot_name = ? AND database = current_database()
ON CONFLICT (slot_name) DO UPDATE SET database = EXCLUDED.database, created_lsn = EXCLUDED.created_lsn,
  created_at = EXCLUDED.created_at, acknowledged_lsn = NULL, acknowledged_at = NULL`;

/** A slot that was there before anything was recorded: remembered from its current position. */
const RECORD_FOUND_SQL = (t: string) => `INSERT INTO ${t}
  (slot_name, database, created_lsn, created_at, acknowledged_lsn, acknowledged_at)
SELECT slot_name, current_database(), NULL, now(), confirmed_flush_lsn, now()
FROM pg_replication_slots WHERE slot_name = ? AND database = current_database()
ON CONFLICT (slot_name) DO NOTHING`;

const DROP_SQL = (t: string) => `DROP TABLE IF EXISTS ${t}`;

function quotedTable(config: Config): string {
  return `${quoteIdent(config.deadLetters.schema)}.${quoteIdent(SLOT_RECORD_TABLE)}`;
}

function table(knex: Knex, config: Config): Knex.QueryBuilder {
  return knex.from(knex.raw(quotedTable(config)));
}

/** A knex query as a set-up step ($1… placeholders, bindings as parameters). */
function step(description: string, query: Knex.QueryBuilder | Knex.Raw): SetupStep {
  const { sql, bindings } = query.toSQL().toNative();
  return { description, sql, params: bindings.map(String) };
}

export function slotRecordTableName(config: Config): string {
  return `${config.deadLetters.schema}.${SLOT_RECORD_TABLE}`;
}

export async function inspectSlotRecord(knex: Knex, config: Config): Promise<SlotRecordState> {
  const { rows } = await knex.raw(SLOT_RECORD_TABLE_EXISTS_SQL, [config.deadLetters.schema, SLOT_RECORD_TABLE]);
  if (!rows[0].table_exists) return { tableExists: false, record: null, otherRecords: 0 };
  const all: Record<string, any>[] = await table(knex, config).select(
    'slot_name', 'database', knex.raw('created_lsn::text AS created_lsn'), 'created_at',
    knex.raw('acknowledged_lsn::text AS acknowledged_lsn'), 'acknowledged_at',
  );
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

/** Runs right after the step that creates the slot: remembers where it began. */
export function recordCreatedSlotStep(config: Config): SetupStep {
  return step(`record replication slot ${config.capture.slot} in ${slotRecordTableName(config)}`,
    compiler.raw(RECORD_CREATED_SQL(quotedTable(config)), [config.capture.slot]));
}

/** A slot that exists but was never recorded (made by hand, or by a version without the record). */
export function recordFoundSlotStep(config: Config): SetupStep {
  return step(`record existing replication slot ${config.capture.slot} in ${slotRecordTableName(config)}`,
    compiler.raw(RECORD_FOUND_SQL(quotedTable(config)), [config.capture.slot]));
}

/** `teardown`: forget the slot; drop the table when no other slot is recorded in it. */
export function planSlotRecordTeardown(state: SlotRecordState, config: Config): SetupStep[] {
  if (!state.tableExists) return [];
  const steps: SetupStep[] = [];
  if (state.record) {
    steps.push(step(`forget replication slot ${config.capture.slot} (${slotRecordTableName(config)})`,
      table(compiler, config).where('slot_name', config.capture.slot).del()));
  }
  if (state.otherRecords === 0) {
    steps.push({ description: `drop slot record table ${slotRecordTableName(config)} (empty)`, sql: DROP_SQL(quotedTable(config)) });
  }
  return steps;
}

/**
 * Records an acknowledged position. Moves forward only, and never below where the recorded slot
 * began: a process still acknowledging an older slot (one `setup --recreate-slot` replaced)
 * cannot rewrite the new slot's record.
 */
export async function recordAcknowledged(knex: Knex, config: Config, lsn: string, at: Date): Promise<void> {
  const position = knex.raw('?::pg_lsn', [lsn]);
  await table(knex, config)
    .where('slot_name', config.capture.slot)
    .andWhere((q) => q.whereNull('created_lsn').orWhere('created_lsn', '<=', position))
    .andWhere((q) => q.whereNull('acknowledged_lsn').orWhere('acknowledged_lsn', '<', position))
    .update({ acknowledged_lsn: position, acknowledged_at: at });
}
