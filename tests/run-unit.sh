#!/bin/sh
# Runs each cmocka test binary given as an argument; prints one summary line at the end.
# Tests find their data through TRC_TEST_DATA (default tests/data). TRC_TEST_WRAPPER, when set,
# is a command each binary runs under (`make valgrind` sets it to valgrind). TRC_TEST_JOBS
# binaries run at a time (default 1); each one's output is printed whole, in argument order.
# A binary that runs past TRC_TEST_TIMEOUT seconds (default 1200, valgrind included) is stopped
# and counted failed: a hang fails the run instead of holding CI to its own limit.
export TRC_TEST_DATA=${TRC_TEST_DATA:-tests/data}
export TRC_TEST_TIMEOUT=${TRC_TEST_TIMEOUT:-1200}
pass=0; fail=0
jobs=${TRC_TEST_JOBS:-1}
if [ "$jobs" -le 1 ]; then
  for t in "$@"; do
    if timeout -k 10 "$TRC_TEST_TIMEOUT" ${TRC_TEST_WRAPPER:-} "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $t"; fi
  done
else
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  # one log and one status file per binary, named after its path
  printf '%s\n' "$@" | xargs -P "$jobs" -I{} sh -c '
    log="$1/$(printf %s "$2" | tr / _)"
    if timeout -k 10 "$TRC_TEST_TIMEOUT" ${TRC_TEST_WRAPPER:-} "$2" >"$log" 2>&1; then echo ok >"$log.rc"; else echo fail >"$log.rc"; fi
  ' sh "$dir" {}
  for t in "$@"; do
    log="$dir/$(printf %s "$t" | tr / _)"
    cat "$log"
    if [ "$(cat "$log.rc" 2>/dev/null)" = ok ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $t"; fi
  done
fi
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
