#!/bin/sh
# POST /v1/control: the control sequence that takes the system from STATE to TARGET.
# Usage: control.sh [STATE] [TARGET] [MODEL] [STEPS_LEFT]      e.g. control.sh 1.0,0.5 0,0
# Prints the JSON answer: controls [T][m], final_state, final_error, cost, trajectory, model.
# STEPS_LEFT (a model trained with tails, config.time_left): plan the last STEPS_LEFT steps only.
set -eu
url=${TRC_URL:-http://127.0.0.1:8080}
state=${1:-1.0,0.5}
target=${2:-0,0}
model=${3:+"\"model\": \"$3\", "}
steps=${4:+"\"steps_left\": $4, "}

curl -sS --fail-with-body \
  -H 'Content-Type: application/json' \
  ${TRC_API_TOKEN:+-H "Authorization: Bearer $TRC_API_TOKEN"} \
  -d "{${model}${steps}\"state\": [$state], \"target\": [$target], \"return\": [\"trajectory\"]}" \
  "$url/v1/control"
