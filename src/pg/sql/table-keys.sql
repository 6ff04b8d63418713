-- table-keys: the key of each table, in key order: the primary key, else the replica identity
-- index. pgoutput's Relation message cannot tell: with REPLICA IDENTITY FULL it flags every column
-- as a key.
--
-- Run by: run and tail, Catalog.preload() and Catalog.lookup() (src/pg/catalog.ts), the latter
-- when a Relation message names a table not seen yet (an ALTER TABLE while running).
-- Parameters:
--   $1  oid[]  the tables' OIDs (pgoutput's relation ids)
-- Returns: one row per table that has a primary key or a replica identity index.
--   relid    int     the table's OID
--   columns  text[]  its key columns, in key order

SELECT i.indrelid::int AS relid, array_agg(a.attname::text ORDER BY k.ord) AS columns
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = ANY($1::oid[]) AND (i.indisprimary OR (i.indisreplident AND NOT EXISTS (
  SELECT 1 FROM pg_index p WHERE p.indrelid = i.indrelid AND p.indisprimary)))
GROUP BY i.indrelid, i.indexrelid;
