#!/bin/sh
# POST /v1/control with a batch: many (state, target) pairs in one request, answered in one
# matrix product. Every per-sample value of the answer gains a leading [N] dimension.
# Usage: control_batch.sh [STATE;STATE;...] [TARGET;TARGET;...]
#        control_batch.sh '1,0.5;-0.5,0.2;2,0' '0,0;0,0;1,0'
set -eu
url=${TRC_URL:-http://127.0.0.1:8080}
states=${1:-1,0.5;-0.5,0.2;2,0}
targets=${2:-0,0;0,0;1,0}

# '1,0.5;-0.5,0.2' -> [[1,0.5],[-0.5,0.2]]
rows() { printf '[[%s]]' "$(printf '%s' "$1" | sed 's/;/],[/g')"; }

curl -sS --fail-with-body \
  -H 'Content-Type: application/json' \
  ${TRC_API_TOKEN:+-H "Authorization: Bearer $TRC_API_TOKEN"} \
  -d "{\"states\": $(rows "$states"), \"targets\": $(rows "$targets")}" \
  "$url/v1/control"
