"""Pack a training config's aligned crops into one compact file for training on another machine.

The trainer reads the alignment cache (raw 112x112 crops, ~37 KB each); a GPU machine without MediaPipe or
the datasets needs the same crops in a few tens of MB. This script runs the trainer's own data preparation
(scan, align into the cache or reuse it, assemble labels) and writes ``<out>.npz`` with:

- ``blob``: every crop encoded (WebP by default, ~1.8 KB a crop at quality 80; or JPEG), concatenated;
  ``offsets`` (N+1);
- ``labels`` (N) and ``identities`` (C, namespaced ``dataset/identity`` as the trainer names them);
- ``data_card``: JSON of the trainer's data card (datasets, counts, identity filters).

    python scripts/pack_training_crops.py --config configs/default_model.toml --out .gpu/default_crops.npz  # ~37 MiB
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from faceapp.core.progress import run_to_completion
from faceapp.training.config import load_config
from faceapp.training.loop import training_data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="training config (TOML) whose data to pack")
    ap.add_argument("--out", required=True, help="output .npz")
    ap.add_argument("--quality", type=int, default=80, help="encoder quality 1-100 (default 80)")
    ap.add_argument("--format", choices=("webp", "jpg"), default="webp", help="crop encoding (default webp)")
    args = ap.parse_args(argv)
    config = load_config(args.config)
    data, data_card = run_to_completion(training_data(config),
                                        lambda p: print(p.message, file=sys.stderr) if p.message else None)
    flag = cv2.IMWRITE_WEBP_QUALITY if args.format == "webp" else cv2.IMWRITE_JPEG_QUALITY
    blobs: list[bytes] = []
    for start in range(0, len(data), 512):
        idx = np.arange(start, min(len(data), start + 512))
        for crop in data.table.crops(idx):
            ok, buf = cv2.imencode(f".{args.format}", crop, [flag, args.quality])
            if not ok:
                raise RuntimeError(f"{args.format} encoding failed")
            blobs.append(buf.tobytes())
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, blob=np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets=offsets,
             labels=data.labels.astype(np.int32), identities=np.asarray(data.identities),
             data_card=np.asarray(json.dumps(data_card)))
    print(f"{len(blobs)} crops of {data.num_classes} identities -> {out} ({out.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
