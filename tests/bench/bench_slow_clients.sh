#!/bin/sh
# trcd holding 5,000 slow and idle connections: a good client's /v1/control p50/p99 (target
# p99 < 10 ms), next to the same client with no other connection. See slow_clients.py.
#   sh tests/bench/bench_slow_clients.sh [BUILD]     (SLOW_CONNS, ROUNDS, REQUESTS to change)
set -eu
BUILD=${1:-build}
TRCD=${TRCD_BIN:-$BUILD/trcd}
[ -x "$TRCD" ] || { echo "bench_slow_clients: $TRCD not built"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/slow_clients.py" "$TRCD" \
    "${TRC_TEST_DATA:-tests/data}/small_init.safetensors"
