#!/usr/bin/env bash
# One prepared session on a lent GPU (the device tool): several `faceapp train` runs from packed crops, in
# parallel on the one GPU, each with its schedule fitted to BUDGET seconds of training; then the model
# folders and logs packed into $OUT (what comes back from the lent machine). The runs are the trainer
# engine itself (precision auto = bfloat16, the crops and their augmentation on the GPU).
#
#   python scripts/pack_training_crops.py --config configs/default_model.toml --out .gpu/default_crops.npz
#   OUT=/some/dir BUDGET=280 bash scripts/gpu_train_session.sh RUNS_FILE
#
# RUNS_FILE: one run a line, "NAME faceapp-train-options..." (# comments), e.g.
#   ship configs/default_model.toml
#   sel  configs/default_model.toml --data .gpu/default_crops.npz::exclude=cfp/301-400
# A line's first option after the name may be a bare config file (it becomes --config FILE); --data PACK is
# added when the line has no --data. Back here: tar xf OUT/models.tar -C runs/ (model folders NAME/).
set -u
RUNS=${1:?usage: OUT=DIR BUDGET=S bash scripts/gpu_train_session.sh RUNS_FILE}
PACK=${PACK:-.gpu/default_crops.npz}
BUDGET=${BUDGET:-280}
OUT=${OUT:-/tmp/gpu_out}
WORK=${WORK:-/tmp/gpu_session}
mkdir -p "$OUT" "$WORK/models" "$WORK/logs"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
nvidia-smi -L
python3 -c "import torch, cv2; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cv2', cv2.__version__)"

while read -r name first rest; do
  case "$name" in ''|'#'*) continue ;; esac
  opts=()
  if [ -n "${first:-}" ] && [ "${first#-}" = "$first" ]; then opts+=(--config "$first"); else rest="${first:-} ${rest:-}"; fi
  # shellcheck disable=SC2206  # the line's options are split on purpose
  opts+=(${rest:-})
  case " ${rest:-} " in *" --data "*) ;; *) opts+=(--data "$PACK") ;; esac
  python3 -m faceapp train "${opts[@]}" --name "$name" --out "$WORK/models/$name" --run-dir "$WORK/runs/$name" \
    --time-budget-s "$BUDGET" < /dev/null > "$WORK/logs/$name.log" 2>&1 &
  echo "started $name: ${opts[*]}"
done < "$RUNS"
wait
tail -n 3 "$WORK"/logs/*.log
tar cf "$OUT/models.tar" -C "$WORK/models" .
cat "$WORK"/logs/*.log > "$OUT/train_logs.txt"
ls -la "$OUT"
