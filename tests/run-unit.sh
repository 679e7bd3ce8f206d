#!/bin/sh
# Runs each cmocka test binary given as an argument; prints one summary line at the end.
# Tests find their data through TRC_TEST_DATA (default tests/data). TRC_TEST_WRAPPER, when set,
# is a command each binary runs under (`make valgrind` sets it to valgrind).
export TRC_TEST_DATA=${TRC_TEST_DATA:-tests/data}
pass=0; fail=0
for t in "$@"; do
  if ${TRC_TEST_WRAPPER:-} "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $t"; fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
