#!/bin/sh
# POST /v1/jobs/ID/cancel: stops a queued or running job within one batch; answers the job,
# now "cancelled". A job that already ended answers 409 conflict.
# Usage: cancel.sh ID
set -eu
url=${TRC_URL:-http://127.0.0.1:8080}
id=${1:?usage: cancel.sh ID}

curl -sS --fail-with-body -X POST \
  ${TRC_API_TOKEN:+-H "Authorization: Bearer $TRC_API_TOKEN"} \
  "$url/v1/jobs/$id/cancel"
