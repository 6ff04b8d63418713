import type { Knex } from 'knex';
import type { Config } from '../../config/types';
import type { SetupStep } from '../../sources/logical/setup';
import { backfillsObjects } from './migrations/000006-backfills';
import { schemaNames } from './names';

/**
 * The backfills table (migration 000006) as `teardown` sees it. Its rows are requests and
 * progress of one slot each: without the slot they mean nothing, so teardown forgets this slot's
 * rows and drops the table (with its NOTIFY function) once no other pipeline's slot has rows in
 * it (several pipelines may share the schema).
 */
export interface BackfillsTableState {
  tableExists: boolean;
  /** Rows of this slot; of them, pending or running. */
  own: number;
  active: number;
  /** Rows of other slots: the table stays for them. */
  others: number;
}

/** ? ?: the schema and the table. */
const TABLE_EXISTS_SQL = `SELECT to_regclass(format('%I.%I', ?::text, ?::text)) IS NOT NULL AS table_exists`;
/** ? ? ?: the slot, three times. */
const COUNTS_SQL = (table: string) => `SELECT
  count(*) FILTER (WHERE slot_name = ?)::int AS own,
  count(*) FILTER (WHERE slot_name = ? AND state IN ('pending', 'running'))::int AS active,
  count(*) FILTER (WHERE slot_name <> ?)::int AS others
  FROM ${table}`;
/** $1: the slot. */
const FORGET_SQL = (table: string) => `DELETE FROM ${table} WHERE slot_name = $1`;

export async function inspectBackfillsTable(knex: Knex, config: Pick<Config, 'deadLetters' | 'capture'>): Promise<BackfillsTableState> {
  const n = schemaNames(config);
  const { rows } = await knex.raw(TABLE_EXISTS_SQL, [n.schema, n.backfills]);
  if (!rows[0].table_exists) return { tableExists: false, own: 0, active: 0, others: 0 };
  const slot = config.capture.slot;
  const counts = await knex.raw(COUNTS_SQL(backfillsObjects(n).table), [slot, slot, slot]);
  const { own, active, others } = counts.rows[0] as { own: number; active: number; others: number };
  return { tableExists: true, own, active, others };
}

export function planBackfillsTeardown(state: BackfillsTableState, config: Pick<Config, 'deadLetters' | 'capture'>): SetupStep[] {
  if (!state.tableExists) return [];
  const n = schemaNames(config);
  const { table, notify } = backfillsObjects(n);
  if (state.others > 0) {
    return state.own > 0
      ? [{ description: `forget the backfills of slot ${config.capture.slot} (${n.schema}.${n.backfills})`, sql: FORGET_SQL(table), params: [config.capture.slot] }]
      : [];
  }
  return [
    { description: `drop backfills table ${n.schema}.${n.backfills}`, sql: `DROP TABLE IF EXISTS ${table}` },
    { description: `drop function ${notify}()`, sql: `DROP FUNCTION IF EXISTS ${notify}()` },
  ];
}

/** Backfills still pending or running: the slot they read along with goes, so they never finish. */
export function backfillsTeardownWarning(state: BackfillsTableState, config: Pick<Config, 'capture'>): string | undefined {
  if (state.active === 0) return undefined;
  return `${state.active} backfill(s) of slot ${config.capture.slot} are pending or running and are removed with it; request them again after setup`;
}

/** Whether teardown drops the table (it then no longer keeps the schema). */
export function backfillsTableDropped(state: BackfillsTableState): boolean {
  return state.tableExists && state.others === 0;
}
