#!/bin/sh
# GET /v1/jobs/ID: a job's status, progress, latest metrics, per-epoch history and result.
# Usage: job.sh ID          print the job once
#        job.sh --wait ID   poll every second until it is terminal (succeeded, failed or
#                           cancelled), printing its status line; exits 0 only on success
#        job.sh             list every job (GET /v1/jobs), newest first
set -eu
url=${TRC_URL:-http://127.0.0.1:8080}
get() { curl -sS --fail-with-body "$url$1"; }

if [ $# -eq 0 ]; then get /v1/jobs; exit 0; fi
if [ "$1" != --wait ]; then get "/v1/jobs/$1"; exit 0; fi

id=${2:?usage: job.sh --wait ID}
while :; do
  job=$(get "/v1/jobs/$id") || { printf '%s\n' "$job"; exit 1; }
  # The answer is JSON; without jq, pick the two fields the loop needs with sed.
  status=$(printf '%s' "$job" | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')
  epoch=$(printf '%s' "$job" | sed -n 's/.*"progress": *{[^}]*"epoch": *\([0-9]*\).*/\1/p')
  echo "job $id: ${status:-?} epoch ${epoch:-0}" >&2
  if printf '%s' "$job" | grep -q '"terminal": *true'; then break; fi
  sleep 1
done
printf '%s\n' "$job"
[ "$status" = succeeded ]
