#!/bin/sh
# GET /v1/models (or /v1/models/NAME): loaded models with their configuration, parameter
# count, checkpoint file, sha256 and load time.
# Usage: models.sh [NAME]
set -eu
url=${TRC_URL:-http://127.0.0.1:8080}

curl -sS --fail-with-body "$url/v1/models${1:+/$1}"
