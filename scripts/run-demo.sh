#!/usr/bin/env bash
# `make run`: runs `pg-cloudevents run`, filling in a local demo for whatever is not configured.
#
#   DATABASE_URL unset            → local PostgreSQL, database pgce_demo with table public.demo_orders,
#                                   plus a loop that changes a demo row every 2 seconds; where no
#                                   PostgreSQL server runs or can be installed (or PGCE_DEMO_DB=embedded),
#                                   an embedded one (PGlite, scripts/pglite-server.js) with
#                                   capture.mode: trigger
#   K_SINK and CLOUDEVENTS_HANDLER unset → CLOUDEVENTS_HANDLER=console (events printed to stdout)
#   PG_CLOUDEVENTS_TABLES and PG_CLOUDEVENTS_CONFIG unset → PG_CLOUDEVENTS_TABLES=public.demo_orders
#
# Everything it chooses is printed to stderr, with how to point it at a real database and sink.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly DEMO_DB=pgce_demo
readonly DEMO_ADMIN_URL="postgres://postgres@127.0.0.1:5432/postgres"
readonly DEMO_URL="postgres://postgres@127.0.0.1:5432/${DEMO_DB}"
readonly DEMO_TABLE=public.demo_orders
readonly DEMO_INTERVAL_SECONDS=2

readonly CREATE_TABLE_SQL="
CREATE TABLE IF NOT EXISTS public.demo_orders (
  id serial PRIMARY KEY,
  customer text,
  total numeric(10,2),
  status text,
  created_at timestamptz DEFAULT now()
);
-- FULL: updates and deletes carry the whole old row, so events show 'old' and update_fields.
ALTER TABLE public.demo_orders REPLICA IDENTITY FULL;"

# One change per tick, in turn: insert a new order, update the newest, delete the oldest.
readonly TICK_SQL=(
  "INSERT INTO public.demo_orders (customer, total, status)
     VALUES ((ARRAY['ada','grace','linus','barbara'])[1 + floor(random() * 4)::int],
             round((random() * 200)::numeric, 2), 'new')"
  "UPDATE public.demo_orders SET status = 'shipped', total = total + 1
     WHERE id = (SELECT max(id) FROM public.demo_orders)"
  "DELETE FROM public.demo_orders
     WHERE id = (SELECT min(id) FROM public.demo_orders)
       AND (SELECT count(*) FROM public.demo_orders) > 3"
)

readonly EMBEDDED_DATA_DIR=.tmp/pglite
readonly EMBEDDED_START_SECONDS=120

# SQL through node and pg, not psql: the embedded database's machine may have no PostgreSQL client.
sql() { node scripts/demo-sql.js "$@"; }

choices=()
demo_db=0
embedded=0
embedded_pid=

# The embedded database (PGlite on a loopback port): started in the background, stopped on exit.
start_embedded() {
  mkdir -p .tmp
  node scripts/pglite-server.js --data-dir "$EMBEDDED_DATA_DIR" --port 0 >.tmp/pglite.json 2>.tmp/pglite.log &
  embedded_pid=$!
  local waited=0
  until [[ -s .tmp/pglite.json ]]; do
    if ! kill -0 "$embedded_pid" 2>/dev/null || ((waited >= EMBEDDED_START_SECONDS * 10)); then
      echo "make run: the embedded PostgreSQL did not start; its log (.tmp/pglite.log):" >&2
      tail -n 20 .tmp/pglite.log >&2 || true
      exit 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  DATABASE_URL=$(node -p 'JSON.parse(require("fs").readFileSync(".tmp/pglite.json", "utf8").split("\n")[0]).url')
  export DATABASE_URL
}

stop_embedded() {
  if [[ -n "$embedded_pid" ]]; then
    kill -TERM "$embedded_pid" 2>/dev/null || true
    wait "$embedded_pid" 2>/dev/null || true
  fi
}

if [[ -z "${DATABASE_URL:-}" ]]; then
  demo_db=1
  embedded_reason=
  if [[ "${PGCE_DEMO_DB:-}" == embedded ]]; then
    embedded_reason="PGCE_DEMO_DB=embedded"
  elif ! scripts/ensure-services.sh postgres; then
    embedded_reason="no PostgreSQL server runs here and none could be installed (see the lines above)"
  fi
  if [[ -n "$embedded_reason" ]]; then
    embedded=1
    trap stop_embedded EXIT
    start_embedded
    sql "$DATABASE_URL" "$CREATE_TABLE_SQL" >/dev/null
    choices+=("database  embedded PostgreSQL (PGlite) at ${DATABASE_URL}, data in ${EMBEDDED_DATA_DIR}: ${embedded_reason}")
    choices+=("capture   trigger mode (a journal written by triggers): the embedded database has no logical replication")
  else
    export DATABASE_URL=$DEMO_URL
    if [[ -z "$(sql "$DEMO_ADMIN_URL" "SELECT 1 FROM pg_database WHERE datname = '${DEMO_DB}'")" ]]; then
      sql "$DEMO_ADMIN_URL" "CREATE DATABASE ${DEMO_DB}" >/dev/null
    fi
    sql "$DATABASE_URL" "$CREATE_TABLE_SQL" >/dev/null
    choices+=("database  ${DATABASE_URL} (local demo database; DATABASE_URL was not set)")
  fi
else
  choices+=("database  DATABASE_URL from your environment")
fi

if [[ -z "${K_SINK:-}" && -z "${CLOUDEVENTS_HANDLER:-}" ]]; then
  export CLOUDEVENTS_HANDLER=console
  choices+=("sink      console: events are printed to stdout (K_SINK was not set)")
elif [[ -n "${K_SINK:-}" ]]; then
  choices+=("sink      K_SINK=${K_SINK%%\?*}")
else
  choices+=("sink      CLOUDEVENTS_HANDLER=${CLOUDEVENTS_HANDLER}")
fi

if [[ -z "${PG_CLOUDEVENTS_TABLES:-}" && -z "${PG_CLOUDEVENTS_CONFIG:-}" ]]; then
  export PG_CLOUDEVENTS_TABLES=$DEMO_TABLE
  choices+=("tables    ${DEMO_TABLE} (PG_CLOUDEVENTS_TABLES was not set)")
elif [[ -n "${PG_CLOUDEVENTS_CONFIG:-}" ]]; then
  choices+=("config    ${PG_CLOUDEVENTS_CONFIG}")
else
  choices+=("tables    ${PG_CLOUDEVENTS_TABLES}")
fi

if [[ $demo_db == 1 && -z "${PG_CLOUDEVENTS_CONFIG:-}" ]]; then
  # Slot names are cluster-wide: the demo keeps its own, so it never takes the default one.
  mkdir -p .tmp
  if ((embedded)); then
    printf 'capture: { mode: trigger, slot: pgce_demo }\n' > .tmp/demo.yaml
  else
    printf 'capture: { slot: pgce_demo, publication: pgce_demo }\n' > .tmp/demo.yaml
    choices+=("slot      pgce_demo (drop it with: DATABASE_URL=$DATABASE_URL PG_CLOUDEVENTS_CONFIG=.tmp/demo.yaml PG_CLOUDEVENTS_TABLES=$PG_CLOUDEVENTS_TABLES node dist/src/cli/main.js teardown)")
  fi
  export PG_CLOUDEVENTS_CONFIG=$PWD/.tmp/demo.yaml
fi

{
  echo
  echo "pg-cloudevents — make run"
  printf '  %s\n' "${choices[@]}"
  if ((demo_db)); then
    echo "  demo      a row of ${DEMO_TABLE} is inserted, updated or deleted every ${DEMO_INTERVAL_SECONDS}s"
  fi
  echo
  echo "  Make a change yourself:"
  if ((demo_db)); then
    echo "    node scripts/demo-sql.js ${DATABASE_URL} \"insert into demo_orders (customer, total, status) values ('you', 9.99, 'new')\""
    if command -v psql >/dev/null 2>&1; then
      echo "    psql ${DATABASE_URL} -c \"insert into demo_orders (customer, total, status) values ('you', 9.99, 'new')\""
    fi
  else
    # Your URL may hold a password: it is not printed.
    echo "    psql \"\$DATABASE_URL\" -c \"insert into <your table> ...\""
  fi
  echo "  Point it at a real database and sink:"
  echo "    DATABASE_URL=postgres://user:pass@host:5432/db PG_CLOUDEVENTS_TABLES=public.orders K_SINK=http://event-display.default.svc make run"
  echo "  Health, readiness and metrics: http://127.0.0.1:${PORT:-8080}/healthz /readyz /metrics. Stop with Ctrl-C."
  echo
} >&2

if ((demo_db)); then
  # `exec` below turns this shell into the node process, keeping its PID, so no trap would be left
  # to run: the loop watches that PID instead and ends as soon as the run process is gone.
  # Ctrl-C reaches the loop too (same process group).
  run_pid=$$
  (
    trap 'exit 0' INT TERM
    tick=0
    while kill -0 "$run_pid" 2>/dev/null; do
      sleep "$DEMO_INTERVAL_SECONDS"
      sql "$DATABASE_URL" "${TICK_SQL[tick % 3]}" >/dev/null 2>&1 || true
      tick=$((tick + 1))
    done
  ) &
fi

# The heap limit the container image ships with (see Dockerfile).
export NODE_OPTIONS="${NODE_OPTIONS:-$(sed -n 's/^ENV .*NODE_OPTIONS=\([^ ]*\).*/\1/p' Dockerfile)}"
if ((embedded)); then
  # Trigger mode's journal and triggers are made by setup (run makes only the product's tables).
  node dist/src/cli/main.js setup >&2
  # Not exec: this shell stays to stop the embedded server (trap) when run ends. Signals reach
  # run directly (same process group); its exit status is this script's.
  status=0
  node dist/src/cli/main.js run || status=$?
  exit "$status"
fi
exec node dist/src/cli/main.js run
