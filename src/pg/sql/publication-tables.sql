-- publication-tables: the tables a publication publishes.
--
-- Run by: inspect() (src/sources/logical/setup.ts), when the publication exists.
-- Parameters:
--   $1  text  the publication's name (capture.publication)
-- Returns: one row per published table, ordered by schema, then name.
--   schema  name  the table's schema
--   name    name  the table's name

SELECT schemaname AS schema, tablename AS name
FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2;
