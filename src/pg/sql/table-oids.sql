-- table-oids: the OIDs of the captured tables, in the order given.
--
-- Run by: run and tail, Catalog.preload() (src/pg/catalog.ts).
-- Parameters:
--   $1  text[]  the tables, each schema-qualified and quoted ("schema"."name"), cast to regclass
-- Returns: one row per table, in the order of $1 (an unknown table is an error, 42P01).
--   relid  int  the table's OID

SELECT ($1::text[])[n]::regclass::oid::int AS relid FROM generate_subscripts($1::text[], 1) AS n;
