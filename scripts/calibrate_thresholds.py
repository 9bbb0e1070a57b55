"""Calibrate a model's decision thresholds on people it never trained on and write them into its card.

A pairs protocol holds a few hundred impostor pairs per fold: too few to place a threshold at FAR 1e-3.
This script scores *every* pair of images of the given protocol's people (CFP folds 9-10 frontal images:
about 1,000 images, ~500,000 impostor and ~4,500 genuine pairs), then sets

- ``verify``   = the threshold at ``--verify-far`` (per comparison; default 1e-3),
- ``identify`` = the threshold at ``--identify-far`` (per comparison; default 1e-4: an unknown probe
  searched against 100 enrolled people is then falsely identified about 1% of the time),

and writes ``card["thresholds"]`` (verify, identify, target_far, identify_far, date, source, with the TAR
at each threshold) with ``--write``. The operator can override them per store (``faceapp thresholds set``).

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
               "tar": {"verify": result["verify_tar"], "identify": result["identify_tar"]}}
    print(json.dumps({**result, "card_thresholds": section}, indent=2))
    if args.write:
        update_card(args.model, thresholds=section)
        print(f"thresholds written to {args.model}/model_card.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
