import type { Knex } from 'knex';
import { quoteIdent } from '../../catalog-sql';
import type { SchemaNames } from '../names';
import { notifiedTableObjects, notifyOnChangeSql, type NotifiedTableObjects } from '../notified-table';
import type { SchemaMigration } from './types';

/**
 * Trigger rules kept in the database (README "Triggers", "Rules at runtime"): one rule per row,
 * written as in the configuration file's `triggers:` list and checked by the same schema when read.
 *   name        the rule's name (the `name` inside `rule` must equal it)
 *   rule        the rule as JSON
 *   created_at  when the row was first written
 *   updated_at  when it was last written (set by the writers: the admin API, the CLI, or by hand)
 * Every statement that changes the table sends one NOTIFY on TRIGGER_RULES_CHANNEL (no payload:
 * a wake-up, the listeners re-read the table), so running processes reload within a second.
 * IF NOT EXISTS / OR REPLACE: safe to run again when the table went missing.
 */

/** The NOTIFY channel the table's statement trigger wakes listeners on. */
export const TRIGGER_RULES_CHANNEL = 'pgcloudevents_triggers';

/** The objects this migration makes, quoted (teardown drops them: src/pg/schema/trigger-rules-table.ts). */
export function triggerRulesObjects(n: SchemaNames): NotifiedTableObjects {
  return notifiedTableObjects(n.schema, n.triggerRules);
}

const SQL = (n: SchemaNames) => {
  const objects = triggerRulesObjects(n);
  const { table } = objects;
  return [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(n.schema)}`,
    `CREATE TABLE IF NOT EXISTS ${table} (
  name       text        PRIMARY KEY,
  rule       jsonb       NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
)`,
    ...notifyOnChangeSql(objects, TRIGGER_RULES_CHANNEL, 'INSERT OR UPDATE OR DELETE OR TRUNCATE'),
  ];
};

export const triggerRules: SchemaMigration = {
  name: '000005_trigger_rules',
  table: (n) => n.triggerRules,
  async up(knex: Knex, names: SchemaNames) {
    for (const sql of SQL(names)) await knex.raw(sql);
  },
};
