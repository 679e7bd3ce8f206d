#!/bin/sh
# Runs libFuzzer harnesses for a bounded time each (make fuzz):
#   sh tests/fuzz/run.sh BUILD_DIR HARNESS...      (FUZZ_SECONDS per harness, FUZZ_JOBS at once)
# Each starts from its committed seeds tests/fuzz/corpus/<h>/ plus what earlier runs found
# (BUILD_DIR/corpus/<h>/, where new inputs go; the repository's seeds are never written), with
# the extra flags of tests/fuzz/<h>.options. A crash, sanitizer report, leak, timeout
# (FUZZ_TIMEOUT s for one input) or out-of-memory fails the run, printing the reproducer.
set -u
if [ "${1:-}" = "--one" ]; then
  b=$2 h=$3
  bin=$b/$h
  mkdir -p "$b/corpus/$h" "$b/artifacts/$h" "$b/logs"
  rm -f "$b/artifacts/$h"/* "$b/results/$h"
  opts=""
  [ -f "tests/fuzz/$h.options" ] && opts=$(grep -v '^#' "tests/fuzz/$h.options")
  log=$b/logs/$h.log
  # shellcheck disable=SC2086
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} OPENBLAS_NUM_THREADS=1 \
    "$bin" $opts -max_total_time="$FUZZ_SECONDS" -timeout="${FUZZ_TIMEOUT:-10}" \
    -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -print_final_stats=1 \
    -artifact_prefix="$b/artifacts/$h/" "$b/corpus/$h" "tests/fuzz/corpus/$h" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
  if [ "$rc" = 0 ]; then
    echo "ok" >"$b/results/$h"
    echo "fuzz: $h: ok, ${runs:-?} inputs in ${FUZZ_SECONDS}s, ${cov:-cov: ?}, corpus $(ls "$b/corpus/$h" | wc -l) found + $(ls "tests/fuzz/corpus/$h" | wc -l) seeds"
  else
    echo "fail" >"$b/results/$h"
    echo "fuzz: $h: FAILED (exit $rc); log $log" >&2
    grep -E 'ERROR|SUMMARY|Sanitizer|runtime error|timeout|out-of-memory|deadly signal' "$log" | head -n 8 >&2
    for a in "$b/artifacts/$h"/*; do
      [ -e "$a" ] || continue
      echo "fuzz: $h: reproducer $a  (rerun: $bin $a; keep it as a seed: cp $a tests/fuzz/corpus/$h/)" >&2
    done
  fi
  exit 0
fi

b=${1:?usage: run.sh BUILD_DIR HARNESS...}
shift
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_JOBS=${FUZZ_JOBS:-2}
export FUZZ_SECONDS
mkdir -p "$b/results"
for h in "$@"; do
  [ -d "tests/fuzz/corpus/$h" ] || { echo "fuzz: $h has no seed corpus tests/fuzz/corpus/$h/" >&2; exit 1; }
done
echo "fuzz: $# harnesses, ${FUZZ_SECONDS}s each, $FUZZ_JOBS at a time"
printf '%s\n' "$@" | xargs -P "$FUZZ_JOBS" -I{} sh "$0" --one "$b" {}
failed=""
for h in "$@"; do
  [ "$(cat "$b/results/$h" 2>/dev/null)" = ok ] || failed="$failed $h"
done
if [ -n "$failed" ]; then
  echo "fuzz: FAILED:$failed" >&2
  exit 1
fi
echo "fuzz: $# passed, 0 failed"
