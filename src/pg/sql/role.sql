-- role: whether the connected user may open a replication connection.
--
-- Run by: setup, check, run and status, in inspect() (src/sources/logical/setup.ts).
-- Parameters: none.
-- Returns: one row.
--   can_replicate  bool  the user is SUPERUSER or has REPLICATION

SELECT rolsuper OR rolreplication AS can_replicate
FROM pg_roles WHERE rolname = current_user;
