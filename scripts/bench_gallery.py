"""Gallery benchmarks: exact identification latency at 1k-1M templates and enrolment throughput.

    python scripts/bench_gallery.py [--scales 1k,10k,100k,1m] [--dim 128] [--repeat 50] [--no-enroll] [--json]

The same functions (``faceapp.bench.gallery``) back the ``identify-*`` and ``enroll-throughput`` stages of
``faceapp bench``.
Identification uses synthetic random unit vectors (5 templates per identity); enrolment uses real AT&T
photos through the whole path (read, detect, align, gate, embed with the active model, one transaction).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from faceapp.core.paths import datasets_dir
from faceapp.bench.gallery import SCALES, enroll_throughput, time_identify


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1k,10k,100k,1m", help="comma-separated: 1k, 10k, 100k, 1m")
    parser.add_argument("--dim", type=int, default=128, help="embedding size (default 128)")
    parser.add_argument("--repeat", type=int, default=50, help="timed queries per scale (default 50)")
    parser.add_argument("--blas", action="store_true", help="multi-threaded BLAS product instead of einsum")
    parser.add_argument("--no-enroll", action="store_true", help="skip the enrolment throughput")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    results: dict[str, object] = {"load_average": os.getloadavg(), "cpus": os.cpu_count()}
    for scale in args.scales.split(","):
        stage = f"identify-{scale.strip().lower()}"
        if stage not in SCALES:
            parser.error(f"unknown scale {scale!r}; known: 1k, 10k, 100k, 1m")
        results[stage] = time_identify(SCALES[stage], args.dim, repeats=args.repeat, use_blas=args.blas)
        if not args.json:
            r = results[stage]
            print(f"{stage:>14}: median {r['median_ms']:8.3f} ms  p95 {r['p95_ms']:8.3f} ms  "
                  f"({r['templates']:,} x {r['dim']} float32, {r['matrix_mb']} MB, {r['product']})", flush=True)
    if not args.no_enroll:
        from faceapp.embedding import Embedder
        from faceapp.vision.pipeline import FacePipeline

        with FacePipeline("image") as pipeline:
            results["enroll-throughput"] = r = enroll_throughput(datasets_dir() / "att_faces", Embedder.load(), pipeline)
        if not args.json:
            print(f"enroll-throughput: {r['images_per_s']} images/s, {r['identities_per_s']} identities/s "
                  f"(5 images each, {r['model_id']}); one enrolment transaction {r['transaction_ms_median']} ms")
    results["load_average_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"load average before/after: {results['load_average']} / {results['load_average_after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
