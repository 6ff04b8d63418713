-- slot-elsewhere: a slot of that name that is not this database's (slot names are cluster-wide):
-- another database's logical slot, or a physical slot (database NULL).
--
-- Run by: inspect() (src/sources/logical/setup.ts), when slot.sql found no row.
-- Parameters:
--   $1  text  the slot's name (capture.slot)
-- Returns: one row, or none when the name is free.
--   slot_type  text  logical or physical
--   database   name  the database it belongs to; NULL for a physical slot

SELECT slot_type, database FROM pg_replication_slots
WHERE slot_name = $1 AND database IS DISTINCT FROM current_database();
