#!/bin/sh
# The default model's recipe, in one place: the double integrator's min_energy expert data
# (seed 42), a seeded training run with the original's settings (batch 64, lr 1e-3, cosine,
# 10% validation). `make run` (scripts/run.sh), the image (docker/Dockerfile, installed there as
# trc-default-model), the Kubernetes training Job and scripts/workflow.sh all train through it.
#
# Usage: default-model.sh RUN_DIR
#   generates RUN_DIR/data/train.npz and trains into RUN_DIR (best_model.safetensors,
#   last_model.safetensors, training_stats.json, training_curves.svg, train_log.jsonl)
# Environment (defaults): TRC (trc), SAMPLES (10000), EPOCHS (20), SIZE (medium),
#   PATIENCE (20; 0 runs the whole cosine budget), THREADS (2), SEED (42)
set -eu
RUN=${1:?usage: default-model.sh RUN_DIR}
TRC=${TRC:-trc}
SAMPLES=${SAMPLES:-10000}
EPOCHS=${EPOCHS:-20}
SIZE=${SIZE:-medium}
PATIENCE=${PATIENCE:-20}
THREADS=${THREADS:-2}
SEED=${SEED:-42}

mkdir -p "$RUN/data"
"$TRC" generate --system double_integrator --expert min_energy --num-samples "$SAMPLES" \
    --seed "$SEED" --out "$RUN/data/train.npz"
"$TRC" train --data "$RUN/data/train.npz" --model-size "$SIZE" --epochs "$EPOCHS" \
    --batch-size 64 --lr 1e-3 --scheduler cosine --patience "$PATIENCE" --val-split 0.1 \
    --seed "$SEED" --threads "$THREADS" --out "$RUN" --json >"$RUN/train_log.jsonl"
