-- foreign-keys: the foreign keys of tables whose rows trigger payloads read, so that a column
-- customer_id with a foreign key makes the relation `customer` (docs/triggers-templates.md,
-- "Relations"). Composite keys are returned too, so a placeholder through one can be told why it
-- is not followed.
--
-- Run by: run and dead-letters replay, RelationCatalog (src/routing/triggers/relations.ts), once
-- for the rules' tables and again for a table a relation leads to that was not read yet.
-- Parameters:
--   $1  text[]  the tables, each schema-qualified and quoted ("schema"."name"), cast to regclass
-- Returns: one row per foreign key, by table and constraint name. All text (read without type parsing).
--   schema             text  the referencing table's schema
--   table_name         text  the referencing table
--   constraint_name    text  the foreign key's name
--   columns            json  its columns, in key order (a JSON array of names)
--   ref_schema         text  the referenced table's schema
--   ref_table          text  the referenced table
--   ref_columns        json  the referenced columns, in key order

SELECT n.nspname AS schema, t.relname AS table_name, c.conname AS constraint_name,
  (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) AS columns,
  rn.nspname AS ref_schema, r.relname AS ref_table,
  (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum) AS ref_columns
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class t ON t.oid = c.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
JOIN pg_catalog.pg_class r ON r.oid = c.confrelid
JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
WHERE c.contype = 'f' AND c.conrelid = ANY($1::regclass[])
ORDER BY n.nspname, t.relname, c.conname;
