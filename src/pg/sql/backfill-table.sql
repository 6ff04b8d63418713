-- backfill-table: one table a backfill request names and the server's version (backfill's
-- watermarks are pgoutput messages in logical mode, PostgreSQL 14 and later). Its key is read
-- with table-keys.sql, the rule the events' subject uses.
--
-- Run by: backfill requests (the backfill command and POST /api/backfills), in
-- validateBackfill() (src/sources/backfill/request.ts).
-- Parameters:
--   $1  text  the table's schema
--   $2  text  the table's name
-- Returns: one row; the table columns are null when there is no such table.
--   server_version  text      current_setting('server_version'), e.g. `15.4 (Debian …)`
--   relid           int       the table's OID
--   kind            "char"    pg_class.relkind: r table, p partitioned table, v view, …

SELECT current_setting('server_version') AS server_version, c.oid::int AS relid, c.relkind AS kind
FROM (SELECT 1) AS one
LEFT JOIN (pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace) ON n.nspname = $1 AND c.relname = $2;
