#!/bin/sh
# trcd under load with wrk: POST /v1/control on a medium model (random init: latency does not
# depend on the weights). Prints medians of 3 runs, then the same load on the FastAPI + uvicorn +
# PyTorch peer (tests/bench/peer_fastapi.py, one worker, one thread) measured now on the same
# cores, and the ratios; "not measured" when its Debian packages are missing.
#   sh tests/bench/bench_server.sh [BUILD]
# BENCH_SECONDS (default 5): length of each wrk run; BENCH_SOAK_SECONDS (default 20; 60 for the
# figure in docs/server.md): the load during which RSS is watched; BENCH_TRAIN=0 skips the
# "while a training job runs" measurement.
set -eu
BUILD=${1:-build}
TRCD=${TRCD_BIN:-$BUILD/trcd}
DUR=${BENCH_SECONDS:-5}
SOAK=${BENCH_SOAK_SECONDS:-20}
PY=/usr/bin/python3
HERE=$(dirname "$0")
LUA=$HERE/control.lua

command -v wrk >/dev/null || { echo "bench_server: wrk is not installed (make deps)"; exit 1; }
[ -x "$TRCD" ] || { echo "bench_server: $TRCD not built"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/trcd-bench.XXXXXX")
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
mkdir -p "$tmp/models" "$tmp/var"
$PY "$HERE/make_model.py" "$tmp/models/default.safetensors" --size medium

# the bench's checkpoint records no time step: the double integrator's, given (never assumed)
"$TRCD" --port 0 --access-log 0 --models-dir "$tmp/models" --data-dir "$tmp/var" \
    --dashboard-dir "$tmp" --dt 0.3333333333333333 2>"$tmp/trcd.log" &
pid=$!
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9]*\).*/\1/p' "$tmp/trcd.log")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "bench_server: trcd did not start"; cat "$tmp/trcd.log"; exit 1; }
url=http://127.0.0.1:$port

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }

# one wrk run: prints "rps p50_us p99_us errors requests"
run_wrk() { # threads connections seconds
  wrk -t"$1" -c"$2" -d"$3"s -s "$LUA" "$url" |
    sed -n 's/^RESULT requests=\([0-9]*\) seconds=[0-9.]* rps=\([0-9.]*\) p50_us=\([0-9]*\) p99_us=\([0-9]*\) errors=\([0-9]*\)/\2 \3 \4 \5 \1/p'
}

# what the server spends: CPU ticks (utime + stime), context switches of all its threads, and
# the model evaluations' row count and sum from /metrics ("ticks switches evals rows")
spend() {
  t=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  c=$(cat /proc/"$pid"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s}')
  b=$(curl -s "$url/metrics" | awk '/^trcd_inference_batch_rows_count/ {n = $2} /^trcd_inference_batch_rows_sum/ {r = $2} END {print n + 0, r + 0}')
  echo "$t $c $b"
}

# median of 3 runs of one configuration: sets rps p50 p99 errs
median3() { # threads connections
  runs=""
  for _ in 1 2 3; do runs="$runs$(run_wrk "$1" "$2" "$DUR")
"; done
  rps=$(printf '%s' "$runs" | awk '{print $1}' | sort -n | sed -n 2p)
  p50=$(printf '%s' "$runs" | awk '{print $2}' | sort -n | sed -n 2p)
  p99=$(printf '%s' "$runs" | awk '{print $3}' | sort -n | sed -n 2p)
  errs=$(printf '%s' "$runs" | awk '{s += $4} END {print s}')
}

rss_start=$(rss_kb)
load0=$(cut -d' ' -f1 /proc/loadavg)
run_wrk 1 1 1 >/dev/null # warm-up

median3 1 1
rps1=$rps p50_1=$p50 p99_1=$p99 err1=$errs
median3 2 8
rps8=$rps err8=$errs
s0=$(spend)
median3 2 16
rps16=$rps p99_16=$p99 err16=$errs
s1=$(spend)
reqs16=$(printf '%s' "$runs" | awk '{s += $5} END {print s}')
# per request over the three 16-connection runs: trcd CPU (us), context switches, rows per evaluation
per16=$(echo "$s0 $s1 $reqs16 $(getconf CLK_TCK)" | awk '{r = $9; if (r > 0) printf "%.0f us CPU (%.0f requests per CPU-second), %.2f context switches per request, %.1f rows per evaluation", ($5 - $1) / $10 / r * 1e6, r * $10 / (($5 - $1) > 0 ? $5 - $1 : 1), ($6 - $2) / r, ($8 - $4) / (($7 - $3) > 0 ? $7 - $3 : 1)}')
rss0=$(rss_kb) # warm: every connection thread and allocator arena exists now

run_wrk 2 16 "$SOAK" >/dev/null
rss1=$(rss_kb)

train_p99="-"
if [ "${BENCH_TRAIN:-1}" != 0 ]; then
  code=$(curl -s -o "$tmp/job.json" -w '%{http_code}' -X POST "$url/v1/train" \
    -H 'Content-Type: application/json' \
    -d '{"name": "benchjob", "num_samples": 20000, "epochs": 50, "model_size": "medium"}' || true)
  if [ "$code" = 202 ]; then
    id=$(sed -n 's/.*"job_id": *"\([^"]*\)".*/\1/p' "$tmp/job.json")
    for _ in $(seq 100); do # wait until it trains (dataset generated, first batches)
      curl -s "$url/v1/jobs/$id" | grep -q '"status": *"running"' && break
      sleep 0.1
    done
    sleep 1
    median3 1 1
    train_p99=$p99
    train_p50=$p50
    curl -s -X POST "$url/v1/jobs/$id/cancel" >/dev/null || true
  else
    echo "bench_server: POST /v1/train answered $code: skipping the training measurement"
  fi
fi


ms() { awk -v us="$1" 'BEGIN {printf "%.3f", us / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "x%.0f", a / b; else printf "-"}'; }
echo "trcd /v1/control, medium model, median of 3 x ${DUR}s (wrk on the same cores; load average $load0 at the start, $(cut -d' ' -f1 /proc/loadavg) now)"
echo "  kernels: $(curl -s "$url/metrics" | sed -n 's/^trcd_kernels_info{\(.*\)} 1$/\1/p')"
printf '  1 connection : p50 %s ms  p99 %s ms  %s req/s\n' "$(ms "$p50_1")" "$(ms "$p99_1")" "$rps1"
printf '  8 connections: %s req/s\n' "$rps8"
printf '  16 connections: %s req/s  p99 %s ms  (trcd: %s)\n' "$rps16" "$(ms "$p99_16")" "$per16"
if [ "$train_p99" != "-" ]; then
  printf '  1 connection while a training job runs: p50 %s ms  p99 %s ms\n' \
    "$(ms "$train_p50")" "$(ms "$train_p99")"
fi
printf '  RSS: %d KiB at start, %d KiB warm, %d KiB after %ss more of 16-connection load\n' \
  "$rss_start" "$rss0" "$rss1" "$SOAK"
printf '  targets: p50 <= 0.5 ms, p99 <= 2 ms (1 conn); >= 20000 req/s, p99 <= 3 ms (16 conn); p99 <= 5 ms while training\n'
total_err=$((err1 + err8 + err16))
kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
pid=""

# The FastAPI peer, the same load, now.
if $PY -c 'import fastapi, uvicorn, torch' 2>/dev/null; then
  pport=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $PY -m uvicorn --app-dir "$HERE" peer_fastapi:app \
      --host 127.0.0.1 --port "$pport" --workers 1 --log-level warning 2>"$tmp/peer.log" &
  pid=$!
  url=http://127.0.0.1:$pport
  up=0
  for _ in $(seq 1800); do # torch takes seconds (minutes on a busy machine) to import
    if curl -s -o /dev/null --max-time 5 -X POST "$url/v1/control" \
        -H 'Content-Type: application/json' -d '{"state": [1.0, 0.5], "target": [0.0, 0.0]}'; then
      up=1
      break
    fi
    sleep 0.1
  done
fi
if [ "${up:-0}" != 1 ]; then
  echo "FastAPI peer: not measured (needs python3-fastapi, python3-uvicorn, python3-torch; or it did not answer within 180 s)"
  [ -n "$pid" ] && tail -3 "$tmp/peer.log"
else
  run_wrk 1 1 1 >/dev/null
  median3 1 1
  prps1=$rps pp50=$p50 pp99=$p99
  median3 2 8
  prps8=$rps
  median3 2 16
  prps16=$rps
  echo "FastAPI + uvicorn + PyTorch peer (peer_fastapi.py, 1 worker, 1 thread), same load, now"
  printf '  1 connection : p50 %s ms  p99 %s ms  %s req/s   (trcd: %s lower p50, %s req/s)\n' \
    "$(ms "$pp50")" "$(ms "$pp99")" "$prps1" "$(ratio "$pp50" "$p50_1")" "$(ratio "$rps1" "$prps1")"
  printf '  8 connections: %s req/s   (trcd %s)\n' "$prps8" "$(ratio "$rps8" "$prps8")"
  printf '  16 connections: %s req/s  (trcd %s)\n' "$prps16" "$(ratio "$rps16" "$prps16")"
fi
[ "$total_err" -eq 0 ] || { echo "bench_server: $total_err wrk errors"; exit 1; }
