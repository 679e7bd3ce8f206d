#!/bin/sh
# POST /v1/train: starts a training job on the server's worker pool. Answers 202 with
# {"job_id": ..., "status": "queued"}; follow it with job.sh, stop it with cancel.sh.
# When the job succeeds, its model is published under NAME and /v1/control can use it.
# Usage: train.sh [NAME] [EPOCHS] [NUM_SAMPLES] [MODEL_SIZE]   e.g. train.sh mymodel 20 2000 small
# Every other spec field (system, expert, seed, batch_size, lr, scheduler, patience,
# val_split) keeps the server's default; see proto/openapi.yaml.
set -eu
url=${TRC_URL:-http://127.0.0.1:8080}
name=${1:-mymodel}
epochs=${2:-20}
samples=${3:-2000}
size=${4:-small}

curl -sS --fail-with-body \
  -H 'Content-Type: application/json' \
  ${TRC_API_TOKEN:+-H "Authorization: Bearer $TRC_API_TOKEN"} \
  -d "{\"name\": \"$name\", \"system\": \"double_integrator\", \"expert\": \"min_energy\",
       \"num_samples\": $samples, \"model_size\": \"$size\", \"epochs\": $epochs,
       \"batch_size\": 64, \"lr\": 0.001, \"seed\": 42}" \
  "$url/v1/train"
