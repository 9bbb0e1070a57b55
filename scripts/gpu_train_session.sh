#!/usr/bin/env bash
# One prepared session on a lent GPU (the device tool): trains the candidate default models in parallel
# with scripts/train_gpu.py from the packed crops, then times the backbones' inference on the GPU.
#
#   python scripts/pack_training_crops.py --config configs/default_model.toml --out .gpu/default_crops.npz
#   OUT=/some/dir BUDGET=330 COMMIT=$(git rev-parse HEAD) bash scripts/gpu_train_session.sh
#
# Each candidate is trained twice: "-sel" without CFP people 301-400 (validation folds 7-8, to choose the
# recipe on people never trained on) and "-ship" on the full default data (CFP 001-400; test folds 9-10
# stay unseen). Back here: python scripts/train_gpu.py --unbundle OUT/NAME.pt --out models/NAME
set -u
PACK=${PACK:-.gpu/default_crops.npz}
BUDGET=${BUDGET:-330}
OUT=${OUT:-/tmp/gpu_out}
COMMIT=${COMMIT:-unknown}
mkdir -p "$OUT" /tmp/gpu_models /tmp/gpu_logs
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
nvidia-smi -L
python3 -c "import torch, cv2; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cv2', cv2.__version__)"

train() {
  local name=$1; shift
  python3 scripts/train_gpu.py --pack "$PACK" --out "/tmp/gpu_models/$name" --bundle "$OUT/$name.pt" \
    --budget "$BUDGET" --epochs 60 --batch 256 --lr 0.1 --git-commit "$COMMIT" "$@" > "/tmp/gpu_logs/$name.log" 2>&1
  echo "$name exit $?"
}

for split in sel ship; do
  extra=()
  [ "$split" = sel ] && extra=(--exclude cfp:301-400)
  train "r9w05-$split"  --backbone resnet9 --backbone-param width=0.5  --loss arcface "${extra[@]}" &
  train "r9w075-$split" --backbone resnet9 --backbone-param width=0.75 --loss arcface "${extra[@]}" &
  train "mfn-$split"    --backbone mobilefacenet --loss arcface "${extra[@]}" &
done
wait
tail -n 4 /tmp/gpu_logs/*.log
cat /tmp/gpu_logs/*.log > "$OUT/train_logs.txt"

python3 - <<'PY' 2>&1 | tee "$OUT/gpu_speed.txt"
import torch
from faceapp.embedding.speed import time_backbone
print(torch.cuda.get_device_name())
for name, kw in (("resnet9", {"width": 0.5}), ("resnet9", {"width": 0.75}), ("mobilefacenet", {})):
    for bs in (1, 64, 512):
        r = time_backbone(name, batch_size=bs, device="cuda", repeat=50 if bs == 1 else 20, rounds=2, **kw)
        print(f"{name} {kw} fp32 batch {bs}: {r.ms_per_face:.4f} ms/face ({r.ms_per_batch_p95:.3f} ms p95 per batch)")
PY
ls -la "$OUT"
