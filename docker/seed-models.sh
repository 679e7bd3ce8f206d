#!/bin/sh
# Copies the default model shipped in the image into a models directory that has none
# (a fresh volume). Atomic: a temporary name, then rename; concurrent seeders write the same file.
set -eu
dir=${1:?usage: trc-seed-models MODELS_DIR}
src=${TRC_SHIPPED_MODEL:-/usr/share/trc/models/default.safetensors}
mkdir -p "$dir"
if [ ! -e "$dir/default.safetensors" ]; then
  tmp="$dir/.default.safetensors.$$"
  cp "$src" "$tmp"
  mv -f "$tmp" "$dir/default.safetensors"
  echo "trc: seeded $dir/default.safetensors with the image's default model"
fi
