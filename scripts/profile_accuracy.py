"""How well the pipeline finds and aligns CFP profile photos, measured against CFP's hand-labelled fiducials.

Usage: python scripts/profile_accuracy.py [--datasets DIR] [--limit N] [--calibrate] [--grid crops.png] [--json]

For every CFP profile photo (2,000; about 2 minutes): which detector found the main face (``landmarker``,
the profile search's ``landmarker-roi`` or box-only ``blazeface``, or none), and for each detector:

* five-point error: the labelled visible eye centre (mean of fiducials 12-17), nose tip (21) and mouth
  corner (25) against the nearer of the face's two eyes, its nose tip and the nearer mouth corner, in units
  of the labelled face height (nasion 18 to chin 8); images whose fiducials are off by more than 0.15 face
  heights are mostly ones the shared copy rescaled without their labels (as for 157 frontal images);
* crop centring: where the middle of the labelled ear-to-nose-tip span (fiducials 0 and 21) lands in the
  112 px crop, signed towards the nose (0 = centred), with the frontal template (``align_face``) and with
  the template turned with the head (``align_turned``, what the pipeline uses);
* crop scale: labelled eye-to-chin height in the crop (frontal CFP crops: 68 px).

``--calibrate`` also runs the profile search's BlazeFace proposals and prints where the turned crop of each
well-located region-search face sits relative to its box (the ``BOX_*`` constants of faceapp.vision.profile).
``--grid`` writes the turned crops of the first 48 profile-search faces (a 12-column PNG) to look at.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from faceapp.capture.images import read_image
from faceapp.core.types import Detector, Face
from faceapp.vision.align import similarity_transform, template, transform_points
from faceapp.vision.assets import BLAZEFACE, resolve_asset
from faceapp.vision.detectors import BlazeFaceBackend
from faceapp.vision.pipeline import FacePipeline, primary_face_index
from faceapp.vision.profile import PROPOSAL_MIN_SCORE, estimate_yaw, facing_from_blazeface, template_for

GOOD = 0.15        # five-point error (face heights) below which a face counts as well located


def five_point_error(points: np.ndarray, fid: np.ndarray) -> float:
    """Mean error of the visible eye, nose tip and visible mouth corner over the labelled face height."""
    height = float(np.linalg.norm(fid[18] - fid[8]))
    eye = fid[12:18].mean(axis=0)
    e = min(np.linalg.norm(points[0] - eye), np.linalg.norm(points[1] - eye))
    m = min(np.linalg.norm(points[3] - fid[25]), np.linalg.norm(points[4] - fid[25]))
    n = np.linalg.norm(points[2] - fid[21])
    return float((e + m + n) / 3.0 / height)


def crop_geometry(matrix: np.ndarray, fid: np.ndarray) -> tuple[float, float]:
    """(centre offset towards the nose, eye-to-chin height) of the labelled face in a crop, pixels."""
    q = transform_points(matrix, fid)
    facing = 1.0 if q[21, 0] >= q[0, 0] else -1.0
    centre = (q[0, 0] + q[21, 0]) / 2.0
    return float((centre - 56.0) * facing), float(q[8, 1] - q[12:18, 1].mean())


def stats(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    if not v.size:
        return {"n": 0}
    return {"n": int(v.size), "mean": round(float(v.mean()), 4), "median": round(float(np.median(v)), 4),
            "p10": round(float(np.percentile(v, 10)), 4), "p90": round(float(np.percentile(v, 90)), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=Path(os.environ.get("FACEAPP_DATASETS", "../shared/datasets")))
    parser.add_argument("--limit", type=int, default=0, help="only the first N profile photos")
    parser.add_argument("--calibrate", action="store_true", help="measure the box-only constants")
    parser.add_argument("--grid", type=Path, help="write a PNG of the first 48 profile-search crops")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    cfp = args.datasets / "cfp" / "Data"
    files = sorted((cfp / "Images").glob("*/profile/*.jpg"))
    if args.limit:
        files = files[:args.limit]
    if not files:
        print(f"no CFP profile photos under {cfp / 'Images'}", file=sys.stderr)
        return 1
    by_detector: collections.Counter[str] = collections.Counter()
    errors: dict[str, list[float]] = collections.defaultdict(list)
    geometry: dict[str, list[tuple[float, float, float, float]]] = collections.defaultdict(list)
    box_rows: list[tuple[float, float, float, float]] = []
    grid: list[np.ndarray] = []
    blaze = None
    if args.calibrate:
        blaze = BlazeFaceBackend(resolve_asset(BLAZEFACE), "image", min_confidence=PROPOSAL_MIN_SCORE)
    start = time.perf_counter()
    with FacePipeline("image") as pipe:
        for i, path in enumerate(files, 1):
            image = read_image(path)
            fid = np.loadtxt(cfp / "Fiducials" / path.relative_to(cfp / "Images").with_suffix(".txt"), delimiter=",")
            aligned = pipe.process(image)
            if i % 500 == 0 and not args.json:
                print(f"{i}/{len(files)} ...", file=sys.stderr)
            if not aligned:
                by_detector["none"] += 1
                continue
            main = aligned[primary_face_index([a.face for a in aligned], image.shape) or 0]
            face = main.face
            name = face.detector.value
            by_detector[name] += 1
            error = five_point_error(face.five_points, fid)
            errors[name].append(error)
            if face.is_fallback and len(grid) < 48:
                grid.append(main.image)
            if error > GOOD:
                continue
            frontal = similarity_transform(face.five_points, template())
            geometry[name].append(crop_geometry(frontal, fid) + crop_geometry(main.transform, fid))
            if blaze is not None and face.detector is Detector.LANDMARKER_ROI:
                box_rows.extend(_box_calibration(blaze, image, face))
    seconds = time.perf_counter() - start
    report: dict = {"images": len(files), "main_face_by_detector": dict(by_detector.most_common()),
                    "seconds": round(seconds, 1), "five_point_error": {k: stats(v) for k, v in errors.items()},
                    "well_located": {k: int(sum(e <= GOOD for e in v)) for k, v in errors.items()}, "crops": {}}
    for name, rows in geometry.items():
        a = np.asarray(rows)
        report["crops"][name] = {"centre_offset_frontal_template": stats(a[:, 0].tolist()),
                                 "eye_chin_frontal_template": stats(a[:, 1].tolist()),
                                 "centre_offset_turned_template": stats(a[:, 2].tolist()),
                                 "eye_chin_turned_template": stats(a[:, 3].tolist())}
    if box_rows:
        b = np.asarray(box_rows)
        report["box_calibration"] = {"faces": len(b), "facing_agrees": int(b[:, 4].sum()),
                                     "BOX_CENTRE_SHIFT": (round(float(np.median(b[:, 0])), 3),
                                                          round(float(np.median(b[:, 1])), 3)),
                                     "BOX_CROP_SIDE": round(float(np.median(b[:, 2])), 3),
                                     "BOX_YAW": round(float(np.median(b[:, 3])), 1),
                                     "blazeface_keypoint_yaw_p10": round(float(np.percentile(b[:, 5], 10)), 1)}
    if args.grid and grid:
        cells = grid + [np.zeros_like(grid[0])] * (-len(grid) % 12)
        cv2.imwrite(str(args.grid), np.vstack([np.hstack(cells[i:i + 12]) for i in range(0, len(cells), 12)]))
    if blaze is not None:
        blaze.close()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{len(files)} CFP profiles in {seconds:.0f} s; main face by detector {report['main_face_by_detector']}")
        for name, s in report["five_point_error"].items():
            print(f"  {name}: five-point error median {s.get('median')} p90 {s.get('p90')} (face heights); "
                  f"{report['well_located'][name]} within {GOOD}")
        for name, c in report["crops"].items():
            print(f"  {name} crops: centre offset {c['centre_offset_frontal_template']['median']} px with the frontal "
                  f"template, {c['centre_offset_turned_template']['median']} px turned; eye-to-chin "
                  f"{c['eye_chin_frontal_template']['median']} / {c['eye_chin_turned_template']['median']} px")
        if "box_calibration" in report:
            print("  box-only constants:", report["box_calibration"])
    return 0


def _box_calibration(blaze: BlazeFaceBackend, image: np.ndarray, face: Face) -> list[tuple[float, ...]]:
    """Where the turned crop of ``face`` sits relative to the BlazeFace box around it (box units)."""
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    boxes = [b for b in blaze.detect(rgb, 0)
             if b.box[0] <= face.center[0] <= b.box[0] + b.box[2] and b.box[1] <= face.center[1] <= b.box[1] + b.box[3]]
    if not boxes:
        return []
    box = max(boxes, key=lambda b: b.score)
    yaw = estimate_yaw(face.five_points)
    inverse = cv2.invertAffineTransform(similarity_transform(face.five_points, template_for(face.five_points)))
    centre = transform_points(inverse, np.array([[56.0, 56.0]]))[0]
    side = 112.0 * float(np.sqrt(abs(np.linalg.det(inverse[:, :2]))))
    x, y, w, h = box.box
    facing = 1 if yaw > 0 else -1
    return [((centre[0] - x - w / 2.0) / w * facing, (centre[1] - y - h / 2.0) / h, side / max(w, h), abs(yaw),
             float(facing_from_blazeface(box) == facing), estimate_yaw(box.five_points) * facing)]


if __name__ == "__main__":
    sys.exit(main())
