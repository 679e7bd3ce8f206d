#!/bin/sh
# Container entry point: seeds the models volume with the image's default model when it has
# none, then becomes trcd (exec, so trcd is PID 1 and receives SIGTERM itself). Arguments are
# passed to trcd; every setting also comes from the TRC_* environment of the image.
set -eu
models=${TRC_MODELS_DIR:-/var/lib/trc/models}
if [ -w "$models" ] || [ ! -e "$models" ]; then
  trc-seed-models "$models"
fi
mkdir -p "${TRC_DATA_DIR:-/var/lib/trc/var}"
exec trcd "$@"
