"""Calibrate a model's decision thresholds on people it never trained on and write them into its card.

A pairs protocol holds a few hundred impostor pairs per fold: too few to place a threshold at FAR 1e-3.
This script scores *every* pair of images of the given protocol's people (CFP folds 9-10 frontal images:
about 1,000 images, ~500,000 impostor and ~4,500 genuine pairs), then sets

- ``verify``   = the threshold at ``--verify-far`` (per comparison; default 1e-3),
- ``identify`` = the threshold at ``--identify-far`` (per comparison; default 1e-4: an unknown probe
  searched against 100 enrolled people is then falsely identified about 1% of the time),

and writes ``card["thresholds"]`` (verify, identify, target_far, identify_far, date, source, with the TAR
at each threshold, and ``far_curve``: FAR and FRR on a grid of thresholds, which the GUI's threshold controls
read to show the operating point of any value) with ``--write``; ``--curve-only`` writes only ``far_curve``. The operator can override them per store (``faceapp thresholds set``).

    python scripts/calibrate_thresholds.py --model models/default --pairs ../shared/datasets/cfp \\
        --format cfp --protocol FF --folds 9,10 --write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

import numpy as np

from faceapp.core.progress import run_to_completion
from faceapp.embedding.embedder import Embedder
from faceapp.embedding.model_folder import update_card
from faceapp.evaluation.metrics import far_frr_at_threshold, threshold_at_far
from faceapp.evaluation.protocols import read_protocol
from faceapp.services.thresholds import labelled_scores
from faceapp.data.evaluate import align_protocol, embed_aligned


CURVE_GRID = np.round(np.arange(-0.2, 1.0 + 1e-9, 0.005), 3)


def far_curve(scores: np.ndarray, same: np.ndarray) -> dict[str, object]:
    """FAR and FRR (accepting ``score >= t``) at every threshold of ``CURVE_GRID``, rounded for the card."""
    impostor = np.sort(scores[~same])
    genuine = np.sort(scores[same])
    far = 1.0 - np.searchsorted(impostor, CURVE_GRID, side="left") / impostor.size
    frr = np.searchsorted(genuine, CURVE_GRID, side="left") / genuine.size
    return {"threshold": CURVE_GRID.tolist(), "far": [float(f"{v:.4g}") for v in far],
            "frr": [float(f"{v:.4g}") for v in frr], "impostor_pairs": int(impostor.size),
            "genuine_pairs": int(genuine.size)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--pairs", required=True, help="pairs file or CFP folder whose people to use")
    ap.add_argument("--format", default="cfp", choices=("cfp", "lfw"))
    ap.add_argument("--root", default=None, help="image root of an LFW-format pairs file")
    ap.add_argument("--protocol", default="FF")
    ap.add_argument("--folds", default="9,10")
    ap.add_argument("--verify-far", type=float, default=1e-3)
    ap.add_argument("--identify-far", type=float, default=1e-4)
    ap.add_argument("--write", action="store_true", help="write the thresholds into the model card")
    ap.add_argument("--curve-only", action="store_true",
                    help="with --write: write only thresholds.far_curve (keep the stored thresholds)")
    args = ap.parse_args(argv)
    folds = [int(f) for f in args.folds.split(",") if f.strip()]
    protocol = read_protocol(args.format, args.pairs, args.root, cfp_protocol=args.protocol, folds=folds or None)
    embedder = Embedder.load(args.model, device="cpu")
    aligned = run_to_completion(align_protocol(protocol))
    emb = run_to_completion(embed_aligned(embedder.embed, aligned))
    ok = np.asarray(aligned.ok)
    # the identity of a CFP image is its person folder (Images/NNN/frontal/NN.jpg), of an LFW one its folder
    people = [p.parent.parent.name if p.parent.name in ("frontal", "profile") else p.parent.name
              for p in protocol.images]
    keep = np.flatnonzero(ok)
    every_pair = keep.size * (keep.size - 1) // 2                   # enumerate all impostor pairs, no sample
    scores, same, _best = run_to_completion(labelled_scores(emb[keep], np.asarray([people[i] for i in keep]),
                                                            max_impostor_pairs=every_pair))
    result: dict[str, object] = {"images": int(keep.size), "failed_images": int((~ok).sum()),
                                 "people": len(set(people)), "genuine_pairs": int(same.sum()),
                                 "impostor_pairs": int((~same).sum())}
    for key, far in (("verify", args.verify_far), ("identify", args.identify_far)):
        t = threshold_at_far(scores, same, far)
        measured_far, frr = far_frr_at_threshold(scores, same, t)
        result[key] = round(float(t), 4)
        result[f"{key}_far_measured"] = measured_far
        result[f"{key}_tar"] = round(1.0 - frr, 4)
    section = {"verify": result["verify"], "identify": result["identify"], "target_far": args.verify_far,
               "identify_far": args.identify_far, "date": dt.date.today().isoformat(),
               "source": f"all pairs of {protocol.name} people ({result['images']} images, "
                         f"{result['impostor_pairs']} impostor pairs; scripts/calibrate_thresholds.py)",
               "tar": {"verify": result["verify_tar"], "identify": result["identify_tar"]},
               "engine": embedder.engine}       # int8 and fp32 scores differ by a few thousandths
    curve = far_curve(scores, same)
    section["far_curve"] = {**curve, "source": section["source"]}
    print(json.dumps({**result, "card_thresholds": {k: v for k, v in section.items() if k != "far_curve"},
                      "far_curve_points": len(curve["threshold"])}, indent=2))
    if args.write:
        update_card(args.model, thresholds={"far_curve": section["far_curve"]} if args.curve_only else section)
        print(f"thresholds written to {args.model}/model_card.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
