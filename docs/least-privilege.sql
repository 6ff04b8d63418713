-- A least-privilege role for pg-cloudevents: no superuser, only what `setup`, `run`, `check`,
-- `status`, `tail`, `teardown` and `dead-letters` use. Run it once, as a superuser (or the owner
-- of the tables and of the database), connected to the captured database:
--
--   psql "postgres://admin@db:5432/app" \
--     -v role=pgcloudevents -v password='…' \
--     -v tables='public.orders, public.line_items' -v publication=pg_cloudevents_app \
--     [-v related='public.customers'] -f docs/least-privilege.sql
--
-- `publication` must be the name pg-cloudevents uses (default `pg_cloudevents_<database>`, or
-- PG_CLOUDEVENTS_PUBLICATION / `capture.publication`) and `tables` the
-- tables it captures (`tables`, PG_CLOUDEVENTS_TABLES), so that `setup` finds the publication
-- complete and changes nothing.
-- Then: DATABASE_URL=postgres://pgcloudevents:…@db:5432/app pg-cloudevents setup
-- (README, "Knative quickstart"). Managed services: on Amazon RDS grant rds_replication instead of
-- REPLICATION; on Cloud SQL a cloudsqlsuperuser member may grant REPLICATION.
\set ON_ERROR_STOP on

-- LOGIN REPLICATION: the replication connection (START_REPLICATION), creating and dropping the
-- pgoutput slot, and the heartbeat (pg_logical_emit_message). Not SUPERUSER.
CREATE ROLE :"role" WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';

-- CREATE on the database: `setup` (or `run`, when it is missing) creates the product's schema
-- `pgcloudevents` (deadLetters.schema) holding the slot record (capture_slots), the
-- dead-letter table and knex's record of the migrations (knex_migrations, knex_migrations_lock),
-- which the role then owns. A publication's owner needs it too.
GRANT CONNECT, CREATE ON DATABASE :"DBNAME" TO :"role";

-- SELECT on the captured tables: `tail` and the initial checks read them; events carry their rows.
-- Tables outside `public` also need: GRANT USAGE ON SCHEMA <schema> TO the role.
GRANT SELECT ON TABLE :tables TO :"role";

-- Trigger payloads that read relations through foreign keys ({{ customer.name }}: README
-- "Triggers") read the related tables when an action is delivered: pass every table a relation
-- leads to, at any depth, as -v related='public.customers, public.addresses'. Without it the role
-- gets no SELECT beyond the captured tables, and such an action is dead-lettered with
-- PGCE_ERR_RELATION naming the table. The foreign keys themselves are read from pg_constraint,
-- open to every role.
\if :{?related}
GRANT SELECT ON TABLE :related TO :"role";
\endif

-- The publication. Creating one FOR TABLE, or changing its tables, needs ownership of every
-- table, which an application's tables rarely give away: so the administrator creates it here
-- and hands it to the role (so that `teardown` may drop it). With the tables as configured,
-- `setup` leaves it as it is. To capture other tables later, run ALTER PUBLICATION … SET TABLE
-- as an administrator, or grant the role ownership of the tables.
CREATE PUBLICATION :"publication" FOR TABLE :tables
  WITH (publish = 'insert, update, delete, truncate', publish_via_partition_root = true);
ALTER PUBLICATION :"publication" OWNER TO :"role";

-- Nothing else: the leader election and the migrations' lock use advisory locks, `status` reads pg_replication_slots
-- and pg_settings, and the type lookups read pg_type, all open to every role.
