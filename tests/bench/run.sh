#!/bin/sh
# `make bench`: runs every benchmark binary (tests/bench/bench_*.c) and script (tests/bench/*.sh
# other than this one) and prints their figures. Each prints its own medians and ratios.
BUILD=${1:-build}
export TRC_BIN=$BUILD/trc TRCD_BIN=$BUILD/trcd TRC_TEST_DATA=${TRC_TEST_DATA:-tests/data}
status=0
for b in "$BUILD"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b" || status=1
done
for s in tests/bench/*.sh; do
  [ "$(basename "$s")" = run.sh ] && continue
  echo "== $(basename "$s")"
  sh "$s" "$BUILD" || status=1
done
exit $status
