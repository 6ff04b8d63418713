#!/usr/bin/env bash
# Makes sure the local services the tests need are installed, running and configured.
#
#   scripts/ensure-services.sh postgres   PostgreSQL only (default)
#   scripts/ensure-services.sh all        PostgreSQL, Redis, RabbitMQ, NATS (JetStream), Mosquitto,
#                                         and tmux (a terminal for the tests)
#
# Idempotent and quiet when everything is already fine; says what it does when it acts.
# It installs a missing tool with apt-get (this script is the record of what the machine needs),
# starts a service only when its port on 127.0.0.1 does not answer, and never stops anything,
# except the one PostgreSQL restart that a changed wal_level / max_* setting requires.
# The start commands are the ones the machine's own documentation gives (node-svc kind).
set -euo pipefail

readonly PG_HOST=127.0.0.1
readonly PG_PORT=5432
# Several tests hold a replication slot (and a walsender) at once; PostgreSQL's default is 10.
readonly MIN_REPLICATION=20

say() { printf 'ensure-services: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: scripts/ensure-services.sh [postgres|all]
  postgres  make sure PostgreSQL runs on 127.0.0.1:5432 with wal_level = logical (default)
  all       also Redis 6379, RabbitMQ 5672, NATS 4222 (JetStream), Mosquitto 1883, and tmux
EOF
}

# --- installing what is missing -------------------------------------------------------------

APT_UPDATED=0
apt_install() {
  if [[ $APT_UPDATED -eq 0 ]]; then
    say "running apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
  say "installing Debian package(s): $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# require_commands "command:debian-package" ...  installs the package of each missing command.
require_commands() {
  local pair cmd pkg missing=()
  for pair in "$@"; do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x "$cmd" ]]; then
      say "missing command $cmd (Debian package $pkg)"
      missing+=("$pkg")
    fi
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    # Deduplicate: several commands come from one package.
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    apt_install "${missing[@]}"
  fi
  for pair in "$@"; do
    cmd=${pair%%:*}
    command -v "$cmd" >/dev/null 2>&1 || [[ -x "$cmd" ]] || die "$cmd still missing after installing ${pair#*:}"
  done
}

# --- probing ----------------------------------------------------------------------------------

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# wait_until <seconds> <what> <command...>: polls every 0.5 s until the command succeeds.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "$what not ready after ${limit}s"
    fi
    sleep 0.5
  done
}

# --- PostgreSQL -------------------------------------------------------------------------------

pg_version() {
  local v
  # shellcheck disable=SC2012  # version folders are plain numbers
  v=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
  [[ -n "$v" ]] || die "no PostgreSQL cluster configured under /etc/postgresql (try: pg_createcluster <version> main)"
  printf '%s' "$v"
}

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }

psql_admin() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres "$@"; }

pg_cluster_cmd() {
  local version=$1 action=$2
  say "PostgreSQL $version: $action"
  pg_ctlcluster --skip-systemctl-redirect "$version" main "$action" >&2
  wait_until 60 "PostgreSQL on $PG_HOST:$PG_PORT" pg_ready
}

# Set when an ALTER SYSTEM needs a restart to take effect.
PG_CHANGED=""

# set_at_least <name> <minimum>
set_at_least() {
  local name=$1 minimum=$2 current
  current=$(psql_admin -c "SHOW $name")
  if ((current < minimum)); then
    say "$name is $current; setting it to $minimum (takes effect on restart)"
    psql_admin -c "ALTER SYSTEM SET $name = $minimum" >/dev/null
    PG_CHANGED=yes
  fi
}

ensure_postgres() {
  require_commands psql:postgresql-client pg_isready:postgresql-client \
    pg_ctlcluster:postgresql pg_lsclusters:postgresql openssl:openssl
  local version
  version=$(pg_version)

  if ! pg_ready; then
    if pg_lsclusters --no-header "$version" main 2>/dev/null | grep -q online; then
      # Running but not (yet) accepting connections, e.g. still recovering: just wait.
      say "PostgreSQL $version is starting; waiting for it"
      wait_until 60 "PostgreSQL on $PG_HOST:$PG_PORT" pg_ready
    else
      pg_cluster_cmd "$version" start
    fi
  fi

  # Logical replication needs wal_level = logical; it can only change with a restart.
  local wal_level
  wal_level=$(psql_admin -c "SHOW wal_level")
  if [[ "$wal_level" != logical ]]; then
    say "wal_level is $wal_level; setting it to logical"
    psql_admin -c "ALTER SYSTEM SET wal_level = logical" >/dev/null
    PG_CHANGED=yes
  fi
  set_at_least max_replication_slots "$MIN_REPLICATION"
  set_at_least max_wal_senders "$MIN_REPLICATION"

  if [[ -n "$PG_CHANGED" ]]; then
    pg_cluster_cmd "$version" restart
    wal_level=$(psql_admin -c "SHOW wal_level")
    [[ "$wal_level" == logical ]] || die "wal_level is still $wal_level after the restart"
    local name value
    for name in max_replication_slots max_wal_senders; do
      value=$(psql_admin -c "SHOW $name")
      ((value >= MIN_REPLICATION)) || die "$name is still $value after the restart"
    done
    say "PostgreSQL $version: wal_level = logical, max_replication_slots and max_wal_senders >= $MIN_REPLICATION"
  fi
}

# --- brokers ----------------------------------------------------------------------------------

# ensure_port <name> <port> <seconds to wait> <start command...>
ensure_port() {
  local name=$1 port=$2 limit=$3
  shift 3
  port_open "$port" && return 0
  say "$name is not answering on 127.0.0.1:$port; starting it"
  "$@" >&2
  wait_until "$limit" "$name on 127.0.0.1:$port" port_open "$port"
  say "$name is up on 127.0.0.1:$port"
}

ensure_brokers() {
  require_commands redis-server:redis-server rabbitmq-server:rabbitmq-server \
    /usr/sbin/nats-server:nats-server mosquitto:mosquitto start-stop-daemon:dpkg

  mkdir -p /var/lib/redis /var/log/redis /var/lib/nats-server
  ensure_port Redis 6379 30 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
    --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  # RabbitMQ boots an Erlang VM: give it longer.
  ensure_port RabbitMQ 5672 120 rabbitmq-server -detached
  ensure_port NATS 4222 30 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  ensure_port Mosquitto 1883 30 mosquitto -d -c /etc/mosquitto/mosquitto.conf
}

# Tools the tests drive (not services): tmux gives a command a real terminal (the backfill
# command's progress bars are tested on one).
ensure_tools() {
  require_commands tmux:tmux
}

main() {
  local what=${1:-postgres}
  case "$what" in
    postgres) ensure_postgres ;;
    all) ensure_postgres; ensure_brokers; ensure_tools ;;
    -h | --help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
