import type { Knex } from 'knex';
import type { Config } from '../../config/types';
import type { SetupStep } from '../../sources/logical/setup';
import { triggerRulesObjects } from './migrations/000005-trigger-rules';
import { schemaNames } from './names';

/**
 * The trigger rules table (migration 000005) as `teardown` sees it. Its rows are rules a user
 * wrote, so teardown treats them like dead letters: the table (with its NOTIFY trigger and
 * function) is dropped only while empty, and kept with a warning otherwise.
 */
export interface TriggerRulesTableState {
  tableExists: boolean;
  /** Rows in the table; 0 when it does not exist. */
  rules: number;
}

/** ? ?: the schema and the table. */
const TABLE_EXISTS_SQL = `SELECT to_regclass(format('%I.%I', ?::text, ?::text)) IS NOT NULL AS table_exists`;

export async function inspectTriggerRulesTable(knex: Knex, config: Pick<Config, 'deadLetters'>): Promise<TriggerRulesTableState> {
  const n = schemaNames(config);
  const { rows } = await knex.raw(TABLE_EXISTS_SQL, [n.schema, n.triggerRules]);
  if (!rows[0].table_exists) return { tableExists: false, rules: 0 };
  const count = await knex.raw(`SELECT count(*)::int AS n FROM ${triggerRulesObjects(n).table}`);
  return { tableExists: true, rules: count.rows[0].n };
}

/** Drops the empty table and its NOTIFY function (the statement trigger goes with the table). */
export function planTriggerRulesTeardown(state: TriggerRulesTableState, config: Pick<Config, 'deadLetters'>): SetupStep[] {
  if (!state.tableExists || state.rules > 0) return [];
  const n = schemaNames(config);
  const { table, notify } = triggerRulesObjects(n);
  return [
    { description: `drop trigger rules table ${n.schema}.${n.triggerRules} (empty)`, sql: `DROP TABLE IF EXISTS ${table}` },
    { description: `drop function ${notify}()`, sql: `DROP FUNCTION IF EXISTS ${notify}()` },
  ];
}

export function triggerRulesTeardownWarning(state: TriggerRulesTableState, config: Pick<Config, 'deadLetters'>): string | undefined {
  if (!state.tableExists || state.rules === 0) return undefined;
  const n = schemaNames(config);
  return `trigger rules table ${n.schema}.${n.triggerRules} holds ${state.rules} rule(s) and is kept; ` +
    `delete them (DELETE /api/triggers/<name>, or DELETE FROM ${n.schema}.${n.triggerRules}), then run teardown again to drop it`;
}
