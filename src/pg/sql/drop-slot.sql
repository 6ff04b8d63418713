-- drop-slot: drops a replication slot (it must not be active).
--
-- Run by: teardown, and setup --recreate-slot, a step of planTeardown()/planSetup()
-- (src/sources/logical/setup.ts); `--dry-run` prints it with $1 inlined.
-- Parameters:
--   $1  text  the slot's name (capture.slot)
-- Returns: one row.
--   pg_drop_replication_slot  void

SELECT pg_drop_replication_slot($1);
