-- related-rows: the rows of one table that trigger payloads reach through a foreign key
-- ({{ customer.name }} reads the customers row whose id is the order's customer_id), one
-- statement for every key a batch of deliveries of one transaction asks for.
--
-- Run by: run and dead-letters replay, the relation resolver's batch loader
-- (src/routing/triggers/relations.ts), on a connection with the replication session's settings
-- (DateStyle, TimeZone, IntervalStyle, extra_float_digits), so values print as in the events.
-- Parameters:
--   $1  unknown[]  the keys (as text; PostgreSQL reads them as the key column's type)
-- Identifier placeholders:
--   :table  the referenced table, quoted and schema-qualified
--   :key    the referenced column, quoted
-- Returns: every column of each matching row (r.*), as text, in the table's column order.

SELECT r.* FROM :table AS r WHERE r.:key = ANY($1)
