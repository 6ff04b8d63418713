-- slot-record: the replication slot this source reads, and how far it acknowledged.
--
-- Contract (src/capture/slot-record.ts reads and writes it; a later migration must keep it):
--   one row per replication slot (slot_name), in the product's schema of the captured database;
--   slot_name         capture.slot
--   database          current_database() when the row was written
--   created_lsn       where the slot began when pg-cloudevents created it; NULL when it was found
--                     already there (created by hand or by an older version) and adopted
--   created_at        when pg-cloudevents created (or adopted) the slot
--   acknowledged_lsn  the last position `run` confirmed to the slot (written every few seconds,
--                     off the capture path, so it may trail the slot by that much); NULL before any
--   acknowledged_at   when that position was confirmed
-- `run`, `check` and `status` compare it with pg_replication_slots: a remembered slot that is
-- missing, invalidated or older than created_lsn is a gap, reported as PGCE_ERR_SLOT_LOST until
-- `setup --recreate-slot` accepts it. `teardown` deletes the row (and the table once it is empty).
--
-- Placeholders, replaced with quoteIdent-quoted identifiers only (never raw text):
--   :schema  deadLetters.schema (default pgcloudevents)   :table  capture_slots
-- Idempotent: `setup` and `run` apply it whenever the table is missing.

CREATE SCHEMA IF NOT EXISTS :schema;

CREATE TABLE IF NOT EXISTS :schema.:table (
  slot_name        text        PRIMARY KEY,
  database         text        NOT NULL,
  created_lsn      pg_lsn,
  created_at       timestamptz NOT NULL DEFAULT now(),
  acknowledged_lsn pg_lsn,
  acknowledged_at  timestamptz
);
