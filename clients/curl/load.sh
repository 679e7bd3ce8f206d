#!/bin/sh
# POST /v1/models/NAME/load: loads a checkpoint and swaps it in atomically (requests in
# flight finish on the old one). A checkpoint that fails validation answers 400 and the model
# already loaded stays.
# Usage: load.sh NAME FILE            FILE is a name inside the server's models directory
#        load.sh --upload NAME PATH [DT]   PATH is a local .safetensors file, sent as the body;
#                                          DT: its time step when it records none (?dt=)
set -eu
url=${TRC_URL:-http://127.0.0.1:8080}

if [ "${1:-}" = --upload ]; then
  name=${2:?usage: load.sh --upload NAME PATH [DT]}
  path=${3:?usage: load.sh --upload NAME PATH [DT]}
  curl -sS --fail-with-body \
    -H 'Content-Type: application/octet-stream' \
    ${TRC_API_TOKEN:+-H "Authorization: Bearer $TRC_API_TOKEN"} \
    --data-binary "@$path" \
    "$url/v1/models/$name/load${4:+?dt=$4}"
else
  name=${1:?usage: load.sh NAME FILE}
  file=${2:?usage: load.sh NAME FILE}
  curl -sS --fail-with-body \
    -H 'Content-Type: application/json' \
    ${TRC_API_TOKEN:+-H "Authorization: Bearer $TRC_API_TOKEN"} \
    -d "{\"checkpoint\": \"$file\"}" \
    "$url/v1/models/$name/load"
fi
