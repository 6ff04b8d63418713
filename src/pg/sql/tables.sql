-- tables: the configured tables as the catalog describes them, with their replica identity,
-- whether they have a primary key, and their generated columns (`attgenerated <> ''`), which
-- pgoutput does not publish (README, "The event").
--
-- Run by: setup, check, run and status, in inspect() (src/sources/logical/setup.ts).
-- Parameters:
--   $1  text[]  the tables' schemas
--   $2  text[]  the tables' names, in the same order as $1
-- Returns: one row per configured table that exists (a missing one has no row).
--   schema             name    its schema
--   name               name    its name
--   kind               "char"  pg_class.relkind: r table, p partitioned table, v view, …
--   replident          "char"  pg_class.relreplident: d default, n nothing, f full, i index
--   has_pk             bool    it has a primary key
--   generated_columns  text[]  its generated columns, in column order

SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind,
  c.relreplident AS replident,
  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
  ARRAY(SELECT a.attname::text FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated <> ''
         ORDER BY a.attnum) AS generated_columns
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]));
