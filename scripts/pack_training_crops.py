"""Pack a training config's aligned crops into one compact file, to train on a machine without the datasets,
MediaPipe or the alignment cache (a lent GPU).

Runs the trainer's own data preparation (scan, align into the cache or reuse it, the config's identity
filters and exclusions, namespaced labels; no hold-out split: the run that trains from the pack makes the same
one) and writes it with ``faceapp.data.pack.write_pack`` (format in that module; ~1.8 KB a crop as WebP
at quality 80). Train from it like from a folder, e.g. on the lent machine:

    python scripts/pack_training_crops.py --config configs/default_model.toml --out .gpu/default_crops.npz
    faceapp train --config configs/default_model.toml --data .gpu/default_crops.npz --out OUT
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from faceapp.core.progress import run_to_completion
from faceapp.training.config import load_config
from faceapp.training.loop import training_data
from faceapp.data.pack import write_pack


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="training config (TOML or JSON) whose data to pack")
    ap.add_argument("--out", required=True, help="output .npz")
    ap.add_argument("--quality", type=int, default=80, help="encoder quality 1-100 (default 80; png: ignored)")
    ap.add_argument("--format", choices=("webp", "jpg", "png"), default="webp", help="crop encoding (default webp)")
    args = ap.parse_args(argv)
    config = load_config(args.config)
    config.validation = dataclasses.replace(config.validation, holdout=0.0, pairs="")   # pack every usable crop
    data, data_card = run_to_completion(training_data(config),
                                        lambda p: print(p.message, file=sys.stderr) if p.message else None)
    out = write_pack(args.out, data, data_card, fmt=args.format, quality=args.quality)
    print(f"{len(data)} crops of {data.num_classes} identities -> {out} ({out.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
