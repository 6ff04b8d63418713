import type { Knex } from 'knex';
import { quoteIdent } from '../../catalog-sql';
import { derivedName, type SchemaNames } from '../names';
import { notifiedTableObjects, notifyOnChangeSql, type NotifiedTableObjects } from '../notified-table';
import type { SchemaMigration } from './types';

/**
 * Backfill requests (README "Backfill"): one row per table of a request. The leader of the
 * pipeline whose slot is `slot_name` performs them in `id` order, chunk by chunk, and writes its
 * progress here after each chunk is delivered, so a new leader (after kill -9 or a takeover)
 * continues from the last finished chunk.
 *   id              the backfill's id (`backfill cancel ID`, /api/backfills/ID)
 *   slot_name       capture.slot of the pipeline that performs it (several may share a database)
 *   schema_name,
 *   table_name      the table read
 *   where_clause    an optional SQL condition on the table's rows (`--where`), NULL for all rows
 *   chunk_size      rows per chunk (`--chunk`)
 *   rate_limit      rows per second at most (`--rate`), NULL for unlimited
 *   origin          who asked: cli, api, on_add (tables[].backfill: onAdd)
 *   state           pending → running → done | cancelled | failed
 *   last_key        the key of the last row of the last delivered chunk, a JSON array of each key
 *                   column's text, in key order; NULL before the first chunk
 *   rows_done       rows read in delivered chunks (a row a live change superseded counts too)
 *   rows_emitted    of them, rows sent as events (the rest were superseded by a live change)
 *   rows_estimated  the planner's estimate of the rows to read, taken when the backfill started
 *   error           why it failed (state failed)
 * Every statement that changes the table NOTIFYs BACKFILLS_CHANNEL (no payload): the leader wakes
 * at once for a new request or a cancel instead of waiting for its next poll.
 */

export const BACKFILLS_CHANNEL = 'pgcloudevents_backfills';

/** The objects this migration makes, quoted. */
export function backfillsObjects(n: SchemaNames): NotifiedTableObjects {
  return notifiedTableObjects(n.schema, n.backfills);
}

const SQL = (n: SchemaNames) => {
  const objects = backfillsObjects(n);
  const { table } = objects;
  return [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(n.schema)}`,
    `CREATE TABLE IF NOT EXISTS ${table} (
  id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  slot_name      text        NOT NULL,
  schema_name    text        NOT NULL,
  table_name     text        NOT NULL,
  where_clause   text,
  chunk_size     integer     NOT NULL CHECK (chunk_size > 0),
  rate_limit     integer     CHECK (rate_limit > 0),
  origin         text        NOT NULL DEFAULT 'cli',
  state          text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'cancelled', 'failed')),
  last_key       jsonb,
  rows_done      bigint      NOT NULL DEFAULT 0,
  rows_emitted   bigint      NOT NULL DEFAULT 0,
  rows_estimated bigint,
  error          text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  started_at     timestamptz,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz
)`,
    `CREATE INDEX IF NOT EXISTS ${quoteIdent(derivedName(n.backfills, '_active'))} ON ${table} (slot_name, id) WHERE state IN ('pending', 'running')`,
    ...notifyOnChangeSql(objects, BACKFILLS_CHANNEL, 'INSERT OR UPDATE OF state OR DELETE'),
  ];
};

export const backfills: SchemaMigration = {
  name: '000006_backfills',
  table: (n) => n.backfills,
  async up(knex: Knex, names: SchemaNames) {
    for (const sql of SQL(names)) await knex.raw(sql);
  },
};
