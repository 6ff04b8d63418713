-- relation: a backfilled table's columns as pgoutput sends them (no dropped or generated
-- columns, in column order), its replica identity and its key, read again for every chunk so a
-- change of the table since the last chunk is seen (README "Backfill").
--
-- Run by: run (the leader), the backfill's chunk reader (src/sources/backfill/chunks.ts).
-- Parameters:
--   $1  text  the table, schema-qualified and quoted ("schema"."name")
-- Returns: one row, or none when the table does not exist.
--   relid      int     the table's OID (pgoutput's relation id)
--   replident  text    relreplident: d (default), n (nothing), f (full), i (index)
--   columns    json    [{ name, typeOid, typeMod, type }], type as format_type prints it

SELECT c.oid::int AS relid, c.relreplident::text AS replident,
  coalesce((SELECT json_agg(json_build_object('name', a.attname, 'typeOid', a.atttypid::int, 'typeMod', a.atttypmod,
    'type', format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
    FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''), '[]'::json) AS columns
FROM pg_class c WHERE c.oid = to_regclass($1)
