#!/bin/sh
# Data-driven tests of the trc command line. Every folder tests/cli/cases/<name>/ is one case:
#   args    the command line after `trc` (may use $TMP, a fresh empty folder, and $DATA, the
#           absolute path of tests/data; quoted like a shell command line)
#   exit    the expected exit status
#   stderr  optional: each non-empty line must appear in stderr (as a fixed substring)
#   stdout  optional: each non-empty line must appear in stdout
#   files   optional: one path per line that must exist afterwards, or !path that must not
#   setup   optional: shell commands run first (with $TMP, $DATA and $TRC set)
# Every failing run (exit != 0) must print exactly one line on stderr, and no case may leave a
# temporary file (*.tmp.*) behind. Adding a case = adding a folder.
# Usage: TRC_BIN=build/trc sh tests/cli/run.sh [case-name...]
TRC=${TRC_BIN:-build/trc}
case "$TRC" in /*) ;; *) TRC=$(pwd)/$TRC ;; esac
DATA=$(cd "${TRC_TEST_DATA:-tests/data}" && pwd)
CASES=$(cd "$(dirname "$0")/cases" && pwd)
export TRC DATA
pass=0
fail=0
failed=""

expand() { # replaces the literal words $TMP and $DATA in stdin
  awk -v tmp="$TMP" -v data="$DATA" '{ gsub(/\$TMP/, tmp); gsub(/\$DATA/, data); print }'
}

check_lines() { # file-with-expected-lines actual-output -> 0 when every line is in the output
  expand < "$1" > "$TMP/.want"
  while IFS= read -r want || [ -n "$want" ]; do
    [ -z "$want" ] && continue
    if ! grep -qF -- "$want" "$2"; then
      echo "missing: $want"
      return 1
    fi
  done < "$TMP/.want"
  return 0
}

run_case() { # dir -> prints reasons, returns non-zero on failure
  dir=$1
  TMP=$(mktemp -d /tmp/trc-cli-XXXXXX)
  export TMP
  out=$TMP/.stdout
  err=$TMP/.stderr
  if [ -f "$dir/setup" ]; then
    if ! (cd "$TMP" && sh -e "$dir/setup") > "$TMP/.setup" 2>&1; then
      echo "setup failed: $(head -c 300 "$TMP/.setup")"
      rm -rf "$TMP"
      return 1
    fi
  fi
  args=$(cat "$dir/args")
  eval "set -- $args"
  timeout 120 "$TRC" "$@" > "$out" 2> "$err"
  status=$?
  want=$(tr -d ' \n' < "$dir/exit")
  ok=0
  if [ "$status" != "$want" ]; then
    echo "exit $status, expected $want; stderr: $(head -c 300 "$err")"
    ok=1
  fi
  if [ "$status" != 0 ] && [ "$(wc -l < "$err")" != 1 ]; then
    echo "a failing run must print exactly one line on stderr, got $(wc -l < "$err"):"
    head -c 500 "$err"
    ok=1
  fi
  if [ -f "$dir/stderr" ] && ! check_lines "$dir/stderr" "$err"; then
    echo "stderr was: $(head -c 300 "$err")"
    ok=1
  fi
  if [ -f "$dir/stdout" ] && ! check_lines "$dir/stdout" "$out"; then
    echo "stdout was: $(head -c 300 "$out")"
    ok=1
  fi
  if [ -f "$dir/files" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
      [ -z "$line" ] && continue
      neg=0
      case "$line" in !*) neg=1; line=${line#!} ;; esac
      path=$(eval "echo \"$line\"")
      if [ "$neg" = 0 ] && [ ! -e "$path" ]; then echo "missing file $path"; ok=1; fi
      if [ "$neg" = 1 ] && [ -e "$path" ]; then echo "unexpected file $path"; ok=1; fi
    done < "$dir/files"
  fi
  left=$(find "$TMP" -name '*.tmp.*' 2>/dev/null | head -3)
  if [ -n "$left" ]; then
    echo "temporary files left behind: $left"
    ok=1
  fi
  rm -rf "$TMP"
  return $ok
}

if [ "$#" -gt 0 ]; then names="$*"; else names=$(ls "$CASES"); fi
for name in $names; do
  dir=$CASES/$name
  [ -f "$dir/args" ] || continue
  if reasons=$(run_case "$dir"); then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    failed="$failed $name"
    echo "FAIL $name"
    echo "$reasons" | sed 's/^/    /'
  fi
done
echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
