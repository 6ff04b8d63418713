-- capture-names: which of the two default names exist, to resolve the slot and publication names.
--
-- Run by: resolveCaptureNames() (src/sources/logical/names.ts).
-- Parameters:
--   $1  text  the per-database default name (pg_cloudevents_<database>)
--   $2  text  an earlier version's default name (pg_cloudevents)
-- Returns: one row.
--   default_slot         bool  this database has a slot named $1
--   earlier_slot         bool  this database has a slot named $2
--   default_publication  bool  a publication named $1 exists
--   earlier_publication  bool  a publication named $2 exists

SELECT
  EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()) AS default_slot,
  EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $2 AND database = current_database()) AS earlier_slot,
  EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1) AS default_publication,
  EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $2) AS earlier_publication;
