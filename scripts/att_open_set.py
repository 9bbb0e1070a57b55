"""Open-set identification on AT&T through the real enrolment and gallery services.

s1-s20 enrolled from images 1-5, probed with images 6-10; s21-s40 (all 10 images) are strangers.
Prints rank-1 rate, identification rate at the stored/card/default identify threshold, and the rate at
which strangers are called "unknown", for the active embedding model (or --model DIR).

    python scripts/att_open_set.py [--model DIR] [--att DIR] [--db PATH] [--threshold T] [--json]

Uses a throw-away SQLite database unless --db is given.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from faceapp.core.paths import datasets_dir
from faceapp.core.progress import run_to_completion


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="embedding model folder (default: the active one)")
    parser.add_argument("--att", type=Path, default=None, help="att_faces folder (default: <datasets>/att_faces)")
    parser.add_argument("--db", default=None, help="database to enrol into (default: a temporary file)")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument("--threshold", type=float, default=None,
                        help="identify (and verify) threshold to use instead of the model card's, e.g. the one at "
                             "FAR 1e-2 on CFP-FF from scripts/calibrate_thresholds.py --verify-far 1e-2")
    args = parser.parse_args(argv)

    from faceapp.embedding import Embedder
    from faceapp.services.open_set import att_protocol, run_open_set
    from faceapp.storage import Store
    from faceapp.vision.pipeline import FacePipeline

    protocol = att_protocol(args.att or datasets_dir() / "att_faces")
    embedder = Embedder.load(args.model)
    if args.threshold is not None:          # as if calibrated into the card: the throw-away store holds none
        embedder.card = {**embedder.card, "thresholds": {"verify": args.threshold, "identify": args.threshold,
                                                         "source": "--threshold"}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, FacePipeline("image") as pipeline, \
            Store(args.db or Path(tmp) / "att.db") as store:
        report = run_to_completion(run_open_set(store, embedder, pipeline, protocol))
    result = {**report.as_dict(), "seconds": round(time.perf_counter() - started, 1)}
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(f"model {result['model_id']} ({'trained' if result['trained'] else 'UNTRAINED'}), "
              f"identify threshold {result['thresholds']['identify']} ({result['thresholds']['source']})")
        print(f"enrolled {result['enrolled_identities']} identities / {result['enrolled_templates']} templates "
              f"({result['enrol_rejected']} images rejected)")
        print(f"rank-1 {result['rank1_rate']}, identified at threshold {result['identification_rate']}, "
              f"strangers unknown {result['stranger_rejection_rate']} "
              f"({result['genuine_probes']} genuine + {result['stranger_probes']} stranger probes, "
              f"{result['probe_failures']} without a face) in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
