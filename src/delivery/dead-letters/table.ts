import type { Knex } from 'knex';
import { quoteIdent } from '../../pg/catalog-sql';
import { MIGRATIONS_LOCK_TABLE, MIGRATIONS_TABLE } from '../../pg/schema/names';
import type { SetupStep } from '../../sources/logical/setup';
import type { Config } from '../../config/types';

/**
 * The dead-letter table as `status` and `teardown` see it. It is made and upgraded by the
 * schema's migrations (src/pg/schema/); this reads whether it exists and holds rows.
 */
export interface DeadLetterTableState {
  schemaExists: boolean;
  tableExists: boolean;
  /** True when the table has no row (or does not exist). EXISTS, not count(*): `run` inspects it at every start. */
  empty: boolean;
  /** Relations in the schema other than the table, its sequence, its indexes and knex's migration tables. */
  otherObjectsInSchema: number;
}

/** ? ? are the schema and the table; ? ? the migrator's two tables. */
export const DEAD_LETTER_STATE_SQL = `SELECT
  EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = ?) AS schema_exists,
  to_regclass(format('%I.%I', ?::text, ?::text)) IS NOT NULL AS table_exists,
  (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ? AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND c.relname NOT IN (?, ?, ?)) AS other_tables`;

export async function inspectDeadLetterTable(knex: Knex, config: Config): Promise<DeadLetterTableState> {
  const { schema, table } = config.deadLetters;
  const state = (await knex.raw(DEAD_LETTER_STATE_SQL, [schema, schema, table, schema, table, MIGRATIONS_TABLE, MIGRATIONS_LOCK_TABLE])).rows[0];
  let empty = true;
  if (state.table_exists) {
    const { rows } = await knex.raw(`SELECT EXISTS (SELECT 1 FROM ${quoteIdent(schema)}.${quoteIdent(table)}) AS any`);
    empty = !rows[0].any;
  }
  return { schemaExists: state.schema_exists, tableExists: state.table_exists, empty, otherObjectsInSchema: state.other_tables };
}

/**
 * What `teardown` may remove: the table only while it is empty (dead letters are events nobody
 * received; they are never dropped silently), and its schema only when nothing else lives there
 * (then knex's record of the migrations goes with it). A table dropped while the schema stays is
 * made again by the next `setup`: the migrations whose table is missing run again.
 * `deadLetterTeardownWarning` says why a table was kept.
 */
export function planDeadLetterTeardown(state: DeadLetterTableState, config: Config): SetupStep[] {
  const { schema, table } = config.deadLetters;
  if (!state.tableExists || !state.empty) return [];
  const steps: SetupStep[] = [
    { description: `drop dead-letter table ${schema}.${table} (empty)`, sql: `DROP TABLE IF EXISTS ${quoteIdent(schema)}.${quoteIdent(table)}` },
  ];
  if (state.schemaExists && state.otherObjectsInSchema === 0 && schema !== 'public') {
    const s = quoteIdent(schema);
    steps.push({
      description: `drop the migration record ${schema}.${MIGRATIONS_TABLE}`,
      sql: `DROP TABLE IF EXISTS ${s}.${quoteIdent(MIGRATIONS_LOCK_TABLE)}, ${s}.${quoteIdent(MIGRATIONS_TABLE)}`,
    });
    // RESTRICT (the default): fails rather than dropping anything we did not create.
    steps.push({ description: `drop schema ${schema} (empty)`, sql: `DROP SCHEMA IF EXISTS ${s}` });
  }
  return steps;
}

export function deadLetterTeardownWarning(state: DeadLetterTableState, config: Config): string | undefined {
  if (!state.tableExists || state.empty) return undefined;
  const { schema, table } = config.deadLetters;
  return `dead-letter table ${schema}.${table} holds dead letters and is kept; ` +
    `replay or purge them (pg-cloudevents dead-letters), then run teardown again to drop it`;
}
