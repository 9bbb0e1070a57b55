"""``faceapp quantize``: make a model folder's int8 network (faceapp.embedding.int8) from real face crops.

Calibration and the agreement check use disjoint, seeded draws of the aligned faces of one dataset folder
(aligned once into the alignment cache, like ``faceapp cache``). Prefer people the model was trained on, not a
test set: calibration only fixes activation ranges, but a test set should stay untouched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from faceapp.cli.commands.pipeline import int_at_least
from faceapp.cli.commands.training import add_common_options, cancel_on_sigint, parse_data_arg
from faceapp.cli.output import emit, print_progress
from faceapp.core.errors import DatasetError
from faceapp.core.progress import CancelToken, run_to_completion


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``quantize``."""
    p = subparsers.add_parser(
        "quantize", help="write a model folder's int8 network (the fast CPU engine) calibrated on real faces",
        description="Exports the folder's network, quantises it to int8 with onnxruntime (activation ranges from "
                    "CROPS aligned faces of DATA), measures its agreement with fp32 on CHECK other faces, and "
                    "records file, SHA-256, calibration data and agreement in the model card. The Embedder's "
                    "'auto' engine then uses it on the CPU.")
    p.add_argument("--model", required=True, metavar="DIR", help="model folder (written: embed_int8.onnx, card)")
    p.add_argument("--data", required=True, metavar="DIR[::key=value...]",
                   help="dataset folder of face photos, or a pack of aligned crops (.npz)")
    p.add_argument("--crops", type=int_at_least(16), default=128,
                   help="calibration crops (default 128; percentile calibration holds every activation of them: "
                        "30-80 MB a crop for MobileFaceNet)")
    p.add_argument("--check", type=int_at_least(16), default=256,
                   help="other crops to measure the agreement with fp32 on (default 256)")
    p.add_argument("--method", choices=("percentile", "minmax", "entropy"), default="percentile",
                   help="activation-range calibration (default percentile)")
    p.add_argument("--seed", type=int, default=0, help="seed of the crop draw (default 0)")
    add_common_options(p, "the card's int8 entry")
    p.set_defaults(handler=_quantize)


def _quantize(args: argparse.Namespace) -> int:
    from faceapp.data.cache import AlignSettings, align_images
    from faceapp.data.datasets import scan_dataset
    from faceapp.data.pack import is_pack, load_pack, scan_pack
    from faceapp.embedding.int8 import quantize_folder

    spec = parse_data_arg(args.data)
    token = CancelToken()
    with cancel_on_sigint(token):
        if is_pack(spec):                                       # crops aligned when packed
            listing = scan_pack(spec)
            job = load_pack(listing, cancel=token)
        else:
            listing = scan_dataset(spec)
            job = align_images(listing.items, name=listing.name, settings=AlignSettings(pad=spec.pad),
                               cache_root=Path(args.cache_dir) if args.cache_dir else None, cancel=token)
        aligned = run_to_completion(job, None if args.quiet else print_progress)
    faces = np.flatnonzero(aligned.ok)
    if faces.size < args.crops + args.check:
        raise DatasetError(f"{args.data}: {faces.size} aligned faces, fewer than --crops {args.crops} + --check "
                           f"{args.check}; lower them or use a bigger dataset", path=str(spec.path))
    drawn = np.random.default_rng(args.seed).permutation(faces)
    calibration = np.sort(drawn[:args.crops])
    check = np.sort(drawn[args.crops:args.crops + args.check])
    entry = quantize_folder(args.model, aligned.crops[calibration], check_crops=aligned.crops[check],
                            source=f"{listing.name} ({args.crops} aligned faces, seed {args.seed})",
                            method=args.method)
    if args.json:
        emit(args, entry)
    else:
        agreed = entry["agreement_with_fp32"]
        print(f"{Path(args.model) / entry['file']}: {entry['bytes'] / 1e6:.2f} MB, sha256 {entry['sha256'][:12]}; "
              f"cosine to fp32 on {agreed['crops']} other faces: mean {agreed['mean_cos']}, "
              f"1st percentile {agreed['p01_cos']}, min {agreed['min_cos']}")
    return 0
