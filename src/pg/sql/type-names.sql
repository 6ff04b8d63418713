-- type-names: each (type, typmod) pair as PostgreSQL prints it (format_type), for the column lists
-- of schema_change events: `integer`, `character varying(20)`, `numeric(10,2)`.
--
-- Run by: run and tail with events.schemaChanges, TypeNames.lookup() (src/pg/type-names.ts), when
-- a Relation message of a captured table names a pair not seen yet.
-- Parameters:
--   $1  oid[]  the types' OIDs (pgoutput's column type OIDs)
--   $2  int[]  their type modifiers, pairwise with $1 (-1: none)
-- Returns: one row per pair.
--   oid   int   the type's OID
--   mod   int   the type modifier
--   name  text  format_type(oid, mod)

SELECT t.oid::int AS oid, t.mod AS mod, pg_catalog.format_type(t.oid, t.mod) AS name
FROM unnest($1::oid[], $2::int[]) AS t(oid, mod);
