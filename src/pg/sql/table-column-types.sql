-- table-column-types: the type OIDs of the captured tables' columns, so that user types (enums,
-- domains, arrays of them) are known before the first row arrives.
--
-- Run by: run and tail, Catalog.preload() (src/pg/catalog.ts).
-- Parameters:
--   $1  text[]  the tables, each schema-qualified and quoted ("schema"."name"), cast to regclass
-- Returns: one row per distinct type.
--   oid  int  pg_attribute.atttypid

SELECT DISTINCT a.atttypid::int AS oid
FROM pg_attribute a WHERE a.attrelid = ANY($1::regclass[]) AND a.attnum > 0 AND NOT a.attisdropped;
