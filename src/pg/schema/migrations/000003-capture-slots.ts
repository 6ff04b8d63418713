import type { Knex } from 'knex';
import { quoteIdent } from '../../catalog-sql';
import type { SchemaNames } from '../names';
import type { SchemaMigration } from './types';

/**
 * The slot record (src/pg/slot-record.ts; README "Replication slot"): one row per replication
 * slot this database's sources read.
 *   slot_name         capture.slot
 *   database          current_database() when the row was written
 *   created_lsn       where the slot began when pg-cloudevents created it; NULL when it was found
 *                     already there (created by hand or by an older version) and adopted
 *   created_at        when pg-cloudevents created (or adopted) the slot
 *   acknowledged_lsn  the last position `run` confirmed to the slot (written every few seconds,
 *                     off the capture path, so it may trail the slot by that much); NULL before any
 *   acknowledged_at   when that position was confirmed
 * IF NOT EXISTS: an install made before knex's migrator already has it.
 */
const SQL = (n: SchemaNames) => [
  `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(n.schema)}`,
  `CREATE TABLE IF NOT EXISTS ${quoteIdent(n.schema)}.${quoteIdent(n.slotRecord)} (
  slot_name        text        PRIMARY KEY,
  database         text        NOT NULL,
  created_lsn      pg_lsn,
  created_at       timestamptz NOT NULL DEFAULT now(),
  acknowledged_lsn pg_lsn,
  acknowledged_at  timestamptz
)`,
];

export const captureSlots: SchemaMigration = {
  name: '000003_capture_slots',
  table: (n) => n.slotRecord,
  async up(knex: Knex, names: SchemaNames) {
    for (const sql of SQL(names)) await knex.raw(sql);
  },
};
