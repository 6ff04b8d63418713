-- backfill-table: one table a backfill request names, with its key (the primary key, else the
-- replica identity index: what the events' subject uses, see table-keys.sql) and the server's
-- version (backfill's watermarks are pgoutput messages, PostgreSQL 14 and later).
--
-- Run by: backfill requests (the backfill command and POST /api/backfills), in
-- validateBackfill() (src/sources/backfill/request.ts).
-- Parameters:
--   $1  text  the table's schema
--   $2  text  the table's name
-- Returns: one row; the table columns are null when there is no such table.
--   server_version  text      current_setting('server_version'), e.g. `15.4 (Debian …)`
--   kind            "char"    pg_class.relkind: r table, p partitioned table, v view, …
--   key_columns     text[]    its key columns in key order; null when it has no key

SELECT current_setting('server_version') AS server_version, c.relkind AS kind,
  (SELECT array_agg(a.attname::text ORDER BY k.ord)
     FROM pg_index i
     CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indexrelid = (SELECT i2.indexrelid FROM pg_index i2
                           WHERE i2.indrelid = c.oid AND (i2.indisprimary OR i2.indisreplident)
                           ORDER BY i2.indisprimary DESC LIMIT 1)) AS key_columns
FROM (SELECT 1) AS one
LEFT JOIN (pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace) ON n.nspname = $1 AND c.relname = $2;
