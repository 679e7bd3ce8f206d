#!/bin/sh
# Browser test of the dashboard (`make browser-test`): starts TRCD_BIN on a free loopback port
# with temporary models and data directories, runs dashboard.test.mjs in headless Chromium
# against it (the test first has trcd train a small default model), stops trcd and prints
# `browser: N passed, M failed`. Screenshots: tests/browser/artifacts/. trcd's log is shown on
# failure.
set -eu
cd "$(dirname "$0")/../.."
: "${TRCD_BIN:?set TRCD_BIN to the trcd binary}"
[ -f tests/browser/node_modules/playwright-core/package.json ] || bash tests/browser/install.sh

tmp=$(mktemp -d "${TMPDIR:-/tmp}/trc-browser.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
mkdir -p "$tmp/models" "$tmp/var"
OPENBLAS_NUM_THREADS=1 "$TRCD_BIN" --host 127.0.0.1 --port "$port" --models-dir "$tmp/models" \
  --data-dir "$tmp/var" --dashboard-dir clients/dashboard >"$tmp/trcd.log" 2>&1 &
pid=$!

url="http://127.0.0.1:$port"
i=0
until curl -fsS "$url/healthz" >/dev/null 2>&1; do
  if ! kill -0 "$pid" 2>/dev/null || [ $i -ge 100 ]; then
    echo "browser: trcd did not start on $url"; cat "$tmp/trcd.log"
    echo "browser: 0 passed, 1 failed"
    exit 1
  fi
  sleep 0.1; i=$((i + 1))
done

status=0
TRC_URL="$url" node tests/browser/dashboard.test.mjs >"$tmp/out" 2>&1 || status=$?
grep -v '^browser:' "$tmp/out" || true
if [ $status -ne 0 ]; then
  echo "--- trcd log (last 40 lines) ---"; tail -n 40 "$tmp/trcd.log"
fi
# The closing line; the node script prints it unless it died before it could.
grep '^browser:' "$tmp/out" || echo "browser: 0 passed, 1 failed (the test did not run to its end)"
exit $status
