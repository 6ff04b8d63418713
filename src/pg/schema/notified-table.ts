import { quoteIdent } from '../catalog-sql';
import { derivedName } from './names';

/**
 * A table of the product's schema whose changes wake running processes (trigger rules, backfill
 * requests): a statement trigger calls a function that sends one NOTIFY without a payload, and the
 * listeners re-read the table. The names are derived from the table's, quoted.
 */
export interface NotifiedTableObjects {
  table: string;
  /** The NOTIFY function, schema-qualified. */
  notify: string;
  /** The statement trigger (named within the table). */
  trigger: string;
}

export function notifiedTableObjects(schema: string, table: string): NotifiedTableObjects {
  return {
    table: `${quoteIdent(schema)}.${quoteIdent(table)}`,
    notify: `${quoteIdent(schema)}.${quoteIdent(derivedName(table, '_notify'))}`,
    trigger: quoteIdent(derivedName(table, '_changed')),
  };
}

/**
 * The function and the statement trigger, after `events` (`INSERT OR UPDATE OR DELETE`, …).
 * `channel` is a literal of the calling migration (DDL takes no bindings), never user input.
 * OR REPLACE / DROP IF EXISTS: safe to run again.
 */
export function notifyOnChangeSql(objects: NotifiedTableObjects, channel: string, events: string): string[] {
  const { table, notify, trigger } = objects;
  return [
    `CREATE OR REPLACE FUNCTION ${notify}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('${channel}', '');
  RETURN NULL;
END
$$`,
    `DROP TRIGGER IF EXISTS ${trigger} ON ${table}`,
    `CREATE TRIGGER ${trigger} AFTER ${events} ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ${notify}()`,
  ];
}
