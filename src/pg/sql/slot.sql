-- slot: the replication slot as PostgreSQL sees it, if it is this database's. A slot name is
-- cluster-wide, and another database's slot of the same name is not ours to report
-- (slot-elsewhere.sql names it).
--
-- Run by: inspect() (src/sources/logical/setup.ts) and the slot health poller (src/server/slot-health.ts).
-- Parameters:
--   $1  text  the slot's name (capture.slot)
-- Returns: one row, or none when this database has no slot of that name.
--   slot_name                name    its name
--   plugin                   name    the output plugin (must be pgoutput)
--   slot_type                text    logical or physical
--   database                 name    the slot's database
--   active                   bool    a walsender reads it now
--   active_pid               int     that walsender's process id, else NULL
--   confirmed_flush_lsn      text    the position the slot confirmed (X/X)
--   restart_lsn              text    the oldest WAL the slot keeps; NULL once it is lost
--   current_lsn              text    pg_current_wal_lsn()
--   retained_bytes           bigint  WAL kept for it (current - restart); NULL once lost
--   lag_bytes                bigint  current - confirmed
--   wal_status               text    reserved, extended, unreserved or lost (lost: invalidated)
--   safe_wal_size            text    bytes that may still be written before invalidation; NULL without a limit
--   max_slot_wal_keep_bytes  text    max_slot_wal_keep_size in bytes (the setting is in MB); NULL when -1 (no limit)

SELECT slot_name, plugin, slot_type, database, active, active_pid,
  confirmed_flush_lsn::text AS confirmed_flush_lsn, restart_lsn::text AS restart_lsn,
  pg_current_wal_lsn()::text AS current_lsn,
  pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained_bytes,
  pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag_bytes,
  wal_status, safe_wal_size::text AS safe_wal_size,
  (SELECT CASE WHEN setting::bigint < 0 THEN NULL ELSE setting::bigint * 1048576 END
     FROM pg_settings WHERE name = 'max_slot_wal_keep_size')::text AS max_slot_wal_keep_bytes
FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database();
