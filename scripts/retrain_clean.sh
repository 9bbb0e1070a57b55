#!/usr/bin/env bash
# Retrain models/clean (no MS-Celeb-1M anywhere in its lineage) from scratch, seeded, with the trainer engine
# (`faceapp train`, the same code as the Trainer tab), on a GPU when there is one, else on the CPU:
#
#   bash scripts/retrain_clean.sh [OUT_FOLDER]          # default OUT_FOLDER: runs/clean-retrained
#
# 1. stage 1, configs/clean_base.toml: MobileFaceNet + ArcFace from random weights on the bundled photos
#    (skipped when BASE already holds a model folder; ~16 h on 2 CPU cores, estimated; minutes on a GPU),
# 2. stage 2, configs/clean_model.toml: that network fine-tuned with ArcFace + relational distillation from
#    dlib's ResNet (needs `pip install -e ".[dlib]"`; dlib embeds each training crop once, cached),
# 3. calibrates the card's thresholds on CFP people 401-500 and evaluates on CFP folds 9-10.
# Copy the folder over models/clean to ship it. Environment:
#   BASE=DIR          stage 1's model folder (default runs/clean-base, where configs/clean_model.toml looks)
#   TRAIN_ARGS="..."  more `faceapp train` options for both stages, e.g. "--device cuda"
#   CFP=DIR           the CFP folder for step 3 (default ../shared/datasets/cfp)
set -euo pipefail
OUT=${1:-runs/clean-retrained}
BASE=${BASE:-runs/clean-base}
CFP=${CFP:-../shared/datasets/cfp}
# shellcheck disable=SC2086  # TRAIN_ARGS is split into options on purpose
[ -f "$BASE/config.json" ] || faceapp train --config configs/clean_base.toml --out "$BASE" ${TRAIN_ARGS:-}
# shellcheck disable=SC2086
faceapp train --config configs/clean_model.toml --init "$BASE" --out "$OUT" ${TRAIN_ARGS:-}
python scripts/calibrate_thresholds.py --model "$OUT" --pairs "$CFP" --format cfp --protocol FF --folds 9,10 --write
faceapp eval --model "$OUT" --pairs "$CFP" --format cfp --protocol FF --protocol FP --folds 9,10
