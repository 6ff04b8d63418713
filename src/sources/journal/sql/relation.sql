-- relation: a captured table as the change model describes it, read when the journal names a
-- table the source has not described yet, or a row whose columns differ from the description
-- (an ALTER TABLE). Generated columns are flagged: events leave them out, as logical replication does.
--
-- Run by: run and tail in capture.mode trigger, Relations.describe() (src/sources/journal/relations.ts).
-- Parameters:
--   $1  oid  the table's OID
-- Returns: one row per column, in column order (none when the table is gone).
--   schema     name    the table's schema
--   name       name    the table's name
--   replident  text    pg_class.relreplident: d default, n nothing, f full, i index
--   column     name    the column's name
--   type_oid   int     its type's OID
--   type_mod   int     its type modifier
--   in_index   bool    part of the replica identity index (the primary key for default)
--   generated  bool    a generated column

SELECT n.nspname AS schema, c.relname AS name, c.relreplident::text AS replident,
  a.attname AS column, a.atttypid::int AS type_oid, a.atttypmod AS type_mod,
  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND a.attnum = ANY(i.indkey::int2[])
          AND CASE c.relreplident WHEN 'i' THEN i.indisreplident ELSE i.indisprimary END) AS in_index,
  a.attgenerated <> '' AS generated
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.oid = $1::oid
ORDER BY a.attnum
