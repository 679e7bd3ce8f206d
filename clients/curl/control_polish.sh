#!/bin/sh
# POST /v1/control with "polish": the model's answer is the warm start of the ilqr expert, which
# runs at most ITERS iterations (the server's --max-polish-iters bounds it, default 100).
# Usage: control_polish.sh [STATE] [TARGET] [ITERS] [MODEL]   e.g. control_polish.sh 1.5,-0.5 0,0 5
# Prints the JSON answer: the polished controls, their simulation, and "polish": {expert,
# max_iters, iterations, converged, cost_before, cost_after, ms}.
set -eu
url=${TRC_URL:-http://127.0.0.1:8080}
state=${1:-1.5,-0.5}
target=${2:-0,0}
iters=${3:-5}
model=${4:+"\"model\": \"$4\", "}

curl -sS --fail-with-body \
  -H 'Content-Type: application/json' \
  -d "{${model}\"state\": [$state], \"target\": [$target], \"polish\": {\"expert\": \"ilqr\", \"max_iters\": $iters}}" \
  "$url/v1/control"
