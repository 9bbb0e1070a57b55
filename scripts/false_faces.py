"""False faces on stills without a face: CelebA photos with every detected face painted over.

Usage: python scripts/false_faces.py [FOLDER] [--step 10] [--limit 600] [--sheet finds.png] [--json]

Takes every STEP-th photo of the CelebA subset (default: 600 photos), paints each face the pipeline finds
(a box 1.8 face sides wide, 2 high, in the photo's mean colour), and runs the pipeline again with and
without the profile search: any face it reports now is a false find (a chest, an arm, a hand; now and
then a real face in the background). Also times the extra work the profile search does on such stills.
About a minute on two CPU cores.
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

from faceapp.capture.images import list_images, read_image
from faceapp.vision.pipeline import FacePipeline


def paint_faces(image: np.ndarray, pipe: FacePipeline) -> np.ndarray | None:
    """``image`` with every face ``pipe`` finds painted over; None when it finds none."""
    faces = pipe.detect(image)
    if not faces:
        return None
    out = image.copy()
    fill = image.reshape(-1, 3).mean(axis=0)
    for face in faces:
        x, y, w, h = face.box
        side, cx, cy = max(w, h), x + w / 2.0, y + h / 2.0
        out[max(0, int(cy - 1.1 * side)):max(0, int(cy + 0.9 * side)),
            max(0, int(cx - 0.9 * side)):max(0, int(cx + 0.9 * side))] = fill
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(os.environ.get("FACEAPP_DATASETS", "../shared/datasets")) / "celeba_subset"
    parser.add_argument("folder", nargs="?", type=Path, default=default)
    parser.add_argument("--step", type=int, default=10)
    parser.add_argument("--limit", type=int, default=600)
    parser.add_argument("--sheet", type=Path, help="write the stills with a false find, boxes drawn (PNG)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    files = list_images([args.folder])[::args.step][:args.limit]
    stills: list[np.ndarray] = []
    with FacePipeline("image", profile_search=False) as plain:
        for path in files:
            painted = paint_faces(read_image(path), plain)
            if painted is not None:
                stills.append(painted)
        start = time.perf_counter()
        without = [bool(plain.detect(image)) for image in stills]
        plain_s = time.perf_counter() - start
    finds: collections.Counter[str] = collections.Counter()
    sheet: list[np.ndarray] = []
    with FacePipeline("image") as pipe:
        start = time.perf_counter()
        found = [pipe.detect(image) for image in stills]
        search_s = time.perf_counter() - start
    for image, faces, before in zip(stills, found, without):
        extra = [f for f in faces if f.is_fallback]
        for face in extra:
            finds[face.detector.value] += 1
        if extra and not before and args.sheet and len(sheet) < 24:
            shown = image.copy()
            for face in extra:
                x, y, w, h = (int(v) for v in face.box)
                cv2.rectangle(shown, (x, y), (x + w, y + h), (0, 255, 0), 2)
            scale = 200.0 / max(shown.shape[:2])
            thumb = cv2.resize(shown, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            cell = np.full((200, 200, 3), 255, np.uint8)
            cell[:thumb.shape[0], :thumb.shape[1]] = thumb
            sheet.append(cell)
    report = {"stills": len(stills), "with_a_face_without_profile_search": int(sum(without)),
              "with_a_face": int(sum(bool(f) for f in found)),
              "profile_search_finds": dict(finds.most_common()),
              "ms_per_still_without_profile_search": round(1000 * plain_s / max(1, len(stills)), 1),
              "ms_per_still": round(1000 * search_s / max(1, len(stills)), 1)}
    if args.sheet and sheet:
        sheet += [np.full_like(sheet[0], 255)] * (-len(sheet) % 6)
        cv2.imwrite(str(args.sheet), np.vstack([np.hstack(sheet[i:i + 6]) for i in range(0, len(sheet), 6)]))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{len(stills)} stills with their faces painted over: {report['with_a_face_without_profile_search']} "
              f"still had a face without the profile search, {report['with_a_face']} with it; profile-search finds "
              f"{report['profile_search_finds']}; {report['ms_per_still_without_profile_search']} -> "
              f"{report['ms_per_still']} ms per still")
    return 0


if __name__ == "__main__":
    sys.exit(main())
