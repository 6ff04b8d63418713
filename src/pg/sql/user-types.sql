-- user-types: what decoding needs of types that are not built in: pg_type rows for registerFromPgType.
-- Arrays are recognised by category 'A' with an element type (int2vector-like types have their own
-- built-in entry).
--
-- Run by: run and tail, Catalog (src/pg/catalog.ts), repeated for the element and base types it
-- names until every type is known (src/pg/types-registry.ts).
-- Parameters:
--   $1  oid[]  the types' OIDs
-- Returns: one row per type that exists.
--   oid          oid     the type
--   typtype      "char"  b base, c composite, d domain, e enum, p pseudo, r range, m multirange
--   typbasetype  oid     a domain's base type, else 0
--   typelem      oid     an array's element type, else 0
--   typcategory  "char"  A for arrays, …

SELECT t.oid, t.typtype, t.typbasetype, t.typelem, t.typcategory
FROM pg_catalog.pg_type t WHERE t.oid = ANY($1::oid[]);
