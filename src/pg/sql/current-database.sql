-- current-database: the database PostgreSQL actually gave us (a URL may leave it to the user
-- name, PGDATABASE or a pooler's mapping).
--
-- Run by: resolveCaptureNames() (src/sources/logical/names.ts), before the default slot and
-- publication names can be known.
-- Parameters: none.
-- Returns: one row.
--   database  name  current_database()

SELECT current_database() AS database;
