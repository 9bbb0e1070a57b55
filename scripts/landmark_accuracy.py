"""Measure MediaPipe landmark and alignment accuracy against CFP's hand-labelled fiducials.

Usage: python scripts/landmark_accuracy.py [--datasets DIR] [--limit N] [--json]

CFP labels 30 points on the image-LEFT half of each frontal face (subject's right side). The ones with a
clear MediaPipe counterpart:
    CFP 12 outer corner of the image-left eye  <-> mesh 33
    CFP 15 inner corner of the image-left eye  <-> mesh 133
    CFP 18 nasion (top of the nose bridge)     <-> mesh 168
    CFP 21 nose tip                            <-> mesh 1
    CFP 22 subnasale (under the nose)          <-> mesh 2
    CFP 25 image-left mouth corner             <-> mesh 61
    CFP 8  chin (menton)                       <-> mesh 152
Errors are divided by the labelled face height (nasion 18 to chin 8), about twice the inter-ocular
distance on these photos. Images whose longest side is exactly 400 px are skipped: the shared copy
downscaled them without rescaling their fiducials.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from faceapp.capture.images import read_image
from faceapp.vision.align import TEMPLATE_112, transform_points
from faceapp.vision.pipeline import FacePipeline

PAIRS = {"eye_outer": (12, 33), "eye_inner": (15, 133), "nasion": (18, 168), "nose_tip": (21, 1),
         "subnasale": (22, 2), "mouth_corner": (25, 61), "chin": (8, 152)}


def stats(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "median": float(np.median(v)), "p95": float(np.percentile(v, 95)),
            "max": float(v.max()), "n": int(v.size)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=Path(os.environ.get("FACEAPP_DATASETS", "../shared/datasets")))
    parser.add_argument("--limit", type=int, default=0, help="stop after N people (0 = all 500)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = args.datasets / "cfp" / "Data"
    errors: dict[str, list[float]] = {k: [] for k in [*PAIRS, "five_point_mean", "crop_eye_px"]}
    skipped = missed = 0
    people = range(1, (args.limit or 500) + 1)
    with FacePipeline("image", fallback=False) as pipe:
        for person in people:
            for number in range(1, 11):
                rel = f"{person:03d}/frontal/{number:02d}"
                image = read_image(data / "Images" / f"{rel}.jpg")
                if max(image.shape[:2]) == 400:
                    skipped += 1
                    continue
                fid = np.loadtxt(data / "Fiducials" / f"{rel}.txt", delimiter=",")
                faces = pipe.process(image)
                if not faces:
                    missed += 1
                    continue
                face = faces[0].face
                lms = face.landmarks[:, :2]
                norm = float(np.linalg.norm(fid[18] - fid[8]))
                for key, (c, m) in PAIRS.items():
                    errors[key].append(float(np.linalg.norm(fid[c] - lms[m])) / norm)
                eye = (fid[12] + fid[15]) / 2.0
                five = [np.linalg.norm(eye - face.five_points[0]), np.linalg.norm(fid[21] - face.five_points[2]),
                        np.linalg.norm(fid[25] - face.five_points[3])]
                errors["five_point_mean"].append(float(np.mean(five)) / norm)
                warped = transform_points(faces[0].transform, eye[None])[0]
                errors["crop_eye_px"].append(float(np.linalg.norm(warped - TEMPLATE_112[0])))
    report = {"skipped_400px": skipped, "no_face": missed, "errors": {k: stats(v) for k, v in errors.items()}}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"CFP frontal: {report['errors']['eye_outer']['n']} measured, {missed} without a face, "
              f"{skipped} skipped (400 px copies)")
        print(f"{'point':16s} {'mean':>7s} {'median':>7s} {'p95':>7s} {'max':>7s}   (fraction of face height; crop_eye_px in px)")
        for key, s in report["errors"].items():
            print(f"{key:16s} {s['mean']:7.4f} {s['median']:7.4f} {s['p95']:7.4f} {s['max']:7.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
