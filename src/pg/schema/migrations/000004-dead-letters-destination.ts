import type { Knex } from 'knex';
import { quoteIdent } from '../../catalog-sql';
import type { SchemaNames } from '../names';
import type { SchemaMigration } from './types';

/**
 * Where each dead letter was going (README "Dead letters", "Destination names"): the name of its
 * destination, so that `dead-letters replay` sends it back there. Rows stored before had only
 * one destination, the default route's (the configured handler), and get its name.
 * ADD COLUMN IF NOT EXISTS: a table that already has it is left as it is.
 */

/** The default route's destination: the configured handler, whichever it is when replayed. */
export const DEFAULT_DESTINATION_NAME = 'default';

// The DEFAULT is a literal (DDL takes no bindings): the constant above, quoted by quoteLiteral.
const SQL = (t: string) => `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS destination text NOT NULL DEFAULT ${quoteLiteral(DEFAULT_DESTINATION_NAME)}`;

function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

export const deadLettersDestination: SchemaMigration = {
  name: '000004_dead_letters_destination',
  table: (n) => n.deadLetters,
  async up(knex: Knex, n: SchemaNames) {
    await knex.raw(SQL(`${quoteIdent(n.schema)}.${quoteIdent(n.deadLetters)}`));
  },
};
