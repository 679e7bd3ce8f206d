#!/bin/sh
# `make run`: makes sure a trained default model exists in the models directory, then runs trcd
# in the foreground (Ctrl-C or SIGTERM stops it cleanly).
#   sh scripts/run.sh [BUILD] [trcd flags...]
# The models directory is TRC_MODELS_DIR (default models/). With no default.safetensors there, one
# is trained by the default-model recipe (scripts/default-model.sh: medium, 10,000 min_energy
# samples, 20 epochs); RUN_EPOCHS and RUN_SAMPLES change that.
set -eu
BUILD=${1:-build}
[ $# -gt 0 ] && shift
MODELS=${TRC_MODELS_DIR:-models}
EPOCHS=${RUN_EPOCHS:-20}
SAMPLES=${RUN_SAMPLES:-10000}

if [ ! -f "$MODELS/default.safetensors" ]; then
  echo "run: no $MODELS/default.safetensors: training one (medium, $SAMPLES samples, $EPOCHS epochs)"
  mkdir -p "$MODELS"
  work=$(mktemp -d "${TMPDIR:-/tmp}/trc-run.XXXXXX")
  trap 'rm -rf "$work"' EXIT INT TERM
  start=$(date +%s)
  TRC="$BUILD/trc" SAMPLES="$SAMPLES" EPOCHS="$EPOCHS" THREADS=1 \
      sh "$(dirname "$0")/default-model.sh" "$work/run" > /dev/null
  # publish atomically: a trcd started concurrently never sees half a file
  cp "$work/run/best_model.safetensors" "$MODELS/.default.safetensors.tmp"
  mv "$MODELS/.default.safetensors.tmp" "$MODELS/default.safetensors"
  echo "run: trained $MODELS/default.safetensors in $(( $(date +%s) - start )) s"
  rm -rf "$work"
  trap - EXIT INT TERM
fi
exec "$BUILD/trcd" --models-dir "$MODELS" "$@"
