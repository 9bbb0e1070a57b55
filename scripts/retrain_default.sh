#!/usr/bin/env bash
# Retrain FaceApp's default model with the recipe of models/default (configs/default_model.toml: a fine-tune of
# the public MS1M MobileFaceNet, `init = "mobilefacenet_ms1m"`, on the bundled photos),
# seeded, with the trainer engine: `faceapp train`, the same code as the Trainer tab. On a GPU when there is
# one (precision auto = bfloat16, the crops and their augmentation on the device), else on the CPU:
#
#   bash scripts/retrain_default.sh [OUT_FOLDER]        # default OUT_FOLDER: runs/default-retrained
#
# 1. trains (aligning the config's datasets into the cache first if needed; seed 0; cuDNN makes GPU runs
#    close but not bit-identical),
#    and writes its int8 network at export (the config's int8_calibration: activation ranges from 256 training
#    crops; the CPU engine the Embedder runs by default),
# 2. calibrates the card's thresholds on CFP people 401-500 and evaluates on CFP folds 9-10 (with that engine).
# Copy the folder over models/default to ship it. Needs ../shared/datasets and the MediaPipe models
# (FACEAPP_MODEL_DIR) on a machine without the alignment cache. Environment:
#   DATA=PACK.npz     train from packed crops instead of the config's folders (a machine without the datasets:
#                     python scripts/pack_training_crops.py --config configs/default_model.toml --out PACK.npz)
#   TRAIN_ARGS="..."  more `faceapp train` options, e.g. "--time-budget-s 280 --device cuda"
#   CFP=DIR           the CFP folder for step 2 (default ../shared/datasets/cfp)
set -euo pipefail
OUT=${1:-runs/default-retrained}
CFP=${CFP:-../shared/datasets/cfp}
DATA_ARGS=()
[ -n "${DATA:-}" ] && DATA_ARGS=(--data "$DATA")
# shellcheck disable=SC2086  # TRAIN_ARGS is split into options on purpose
faceapp train --config configs/default_model.toml --out "$OUT" ${DATA_ARGS[@]+"${DATA_ARGS[@]}"} ${TRAIN_ARGS:-}
python scripts/calibrate_thresholds.py --model "$OUT" --pairs "$CFP" --format cfp --protocol FF --folds 9,10 --write
faceapp eval --model "$OUT" --pairs "$CFP" --format cfp --protocol FF --protocol FP --folds 9,10
