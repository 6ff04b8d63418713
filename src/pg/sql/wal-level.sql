-- wal-level: the server settings logical capture depends on, and the database we are in.
--
-- Run by: setup, check, run and status, in inspect() (src/sources/logical/setup.ts).
-- Parameters: none.
-- Returns: one row.
--   wal_level   text  must be 'logical'
--   max_slots   int   max_replication_slots
--   used_slots  int   replication slots that exist now, of every database
--   database    text  current_database()

SELECT current_setting('wal_level') AS wal_level,
  current_setting('max_replication_slots')::int AS max_slots,
  (SELECT count(*)::int FROM pg_replication_slots) AS used_slots,
  current_database() AS database;
