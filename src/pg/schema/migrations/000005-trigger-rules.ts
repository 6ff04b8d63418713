import type { Knex } from 'knex';
import { quoteIdent } from '../../catalog-sql';
import { derivedName, type SchemaNames } from '../names';
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
export function triggerRulesObjects(n: SchemaNames): { table: string; notify: string; trigger: string } {
  return {
    table: `${quoteIdent(n.schema)}.${quoteIdent(n.triggerRules)}`,
    notify: `${quoteIdent(n.schema)}.${quoteIdent(derivedName(n.triggerRules, '_notify'))}`,
    trigger: quoteIdent(derivedName(n.triggerRules, '_changed')),
  };
}

const SQL = (n: SchemaNames) => {
  const { table, notify, trigger } = triggerRulesObjects(n);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(n.schema)}`,
    `CREATE TABLE IF NOT EXISTS ${table} (
  name       text        PRIMARY KEY,
  rule       jsonb       NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
)`,
    // The channel is a literal of this file (DDL takes no bindings), never user input.
    `CREATE OR REPLACE FUNCTION ${notify}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('${TRIGGER_RULES_CHANNEL}', '');
  RETURN NULL;
END
$$`,
    `DROP TRIGGER IF EXISTS ${trigger} ON ${table}`,
    `CREATE TRIGGER ${trigger} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ${notify}()`,
  ];
};

export const triggerRules: SchemaMigration = {
  name: '000005_trigger_rules',
  table: (n) => n.triggerRules,
  async up(knex: Knex, names: SchemaNames) {
    for (const sql of SQL(names)) await knex.raw(sql);
  },
};
