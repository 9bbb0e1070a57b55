#!/usr/bin/env bash
# Retrain FaceApp's default model from scratch with the recipe of models/default, seeded, on a GPU when
# there is one (the shipped run: 280 s on an H200) or on the CPU (about 16 hours on 2 cores, estimated):
#
#   bash scripts/retrain_default.sh [OUT_FOLDER]        # default OUT_FOLDER: runs/default-retrained
#
# 1. packs configs/default_model.toml's data (aligning it into the cache first if needed),
# 2. trains MobileFaceNet + ArcFace for 52 epochs (scripts/train_gpu.py; seed 0; cuDNN makes GPU runs
#    close but not bit-identical),
# 3. calibrates the card's thresholds on CFP people 401-500 and evaluates on CFP folds 9-10.
# Copy the folder over models/default to ship it. Needs ../shared/datasets and the MediaPipe models
# (FACEAPP_MODEL_DIR) for step 1 on a machine without the alignment cache.
set -euo pipefail
OUT=${1:-runs/default-retrained}
PACK=${PACK:-.gpu/default_crops.npz}
CFP=${CFP:-../shared/datasets/cfp}
[ -f "$PACK" ] || python scripts/pack_training_crops.py --config configs/default_model.toml --out "$PACK"
python scripts/train_gpu.py --pack "$PACK" --out "$OUT" --name default --backbone mobilefacenet --loss arcface \
  --epochs 52 --batch 256 --lr 0.1 --seed 0 --git-commit "$(git rev-parse HEAD 2>/dev/null || echo unknown)"
python scripts/calibrate_thresholds.py --model "$OUT" --pairs "$CFP" --format cfp --protocol FF --folds 9,10 --write
faceapp eval --model "$OUT" --pairs "$CFP" --format cfp --protocol FF --protocol FP --folds 9,10
