import type { Knex } from 'knex';
import { quoteIdent } from '../../catalog-sql';
import { derivedName, type SchemaNames } from '../names';
import type { SchemaMigration } from './types';

/**
 * The dead-letter table as the first version created it (README "Dead letters"): one row per
 * event that failed for good, `event` the whole CloudEvent in structured JSON (CloudEvents JSON
 * format §3). 000002 brings it to today's shape. IF NOT EXISTS throughout: an install made before
 * knex's migrator already has it.
 */
const SQL = (n: SchemaNames) => {
  const table = `${quoteIdent(n.schema)}.${quoteIdent(n.deadLetters)}`;
  return [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(n.schema)}`,
    `CREATE TABLE IF NOT EXISTS ${table} (
  id               bigserial PRIMARY KEY,
  event_id         text        NOT NULL,
  source           text,
  type             text,
  subject          text,
  partition_key    text,
  event            jsonb       NOT NULL,
  error            text        NOT NULL,
  status           int,
  attempts         int         NOT NULL,
  first_attempt_at timestamptz NOT NULL,
  last_attempt_at  timestamptz NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  commit_lsn       pg_lsn
)`,
    // `purge --before` and `list` (oldest first) scan by age.
    `CREATE INDEX IF NOT EXISTS ${quoteIdent(derivedName(n.deadLetters, '_created_at_idx'))} ON ${table} (created_at)`,
  ];
};

export const deadLetters: SchemaMigration = {
  name: '000001_dead_letters',
  table: (n) => n.deadLetters,
  async up(knex: Knex, names: SchemaNames) {
    for (const sql of SQL(names)) await knex.raw(sql);
  },
};
