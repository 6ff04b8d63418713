#!/usr/bin/env bash
# Builds the Kafka test stand-in: librdkafka's built-in mock cluster behind a tiny launcher
# (test/integration/harness/kafka-mock.c → .tmp/kafka-mock). There is no Kafka broker and no
# Docker on the project's machines (README, "How the handlers are tested").
#
#   scripts/ensure-kafka-mock.sh
#
# Idempotent and quiet when everything is already fine; says what it does when it acts.
# Installs librdkafka-dev with apt-get when its rdkafka_mock.h is missing (this script is the
# record of what the machine needs), and rebuilds the launcher only when the source is newer.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
readonly ROOT
readonly HEADER=/usr/include/librdkafka/rdkafka_mock.h
readonly SOURCE=$ROOT/test/integration/harness/kafka-mock.c
readonly BINARY=$ROOT/.tmp/kafka-mock

say() { printf 'ensure-kafka-mock: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

if [[ ! -f $HEADER ]]; then
  say "missing $HEADER (Debian package librdkafka-dev); installing it"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq librdkafka-dev >&2
  [[ -f $HEADER ]] || die "$HEADER still missing after installing librdkafka-dev"
fi
command -v gcc >/dev/null 2>&1 || die "gcc is needed to build the Kafka mock launcher (Debian package gcc)"

if [[ ! -x $BINARY || $SOURCE -nt $BINARY ]]; then
  mkdir -p "$(dirname "$BINARY")"
  say "building $BINARY"
  gcc -std=c11 -O2 -Wall -Wextra -Werror -o "$BINARY.new" "$SOURCE" -lrdkafka
  mv -f "$BINARY.new" "$BINARY"
fi
