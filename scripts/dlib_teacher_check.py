"""Check the dlib teacher's chips: dlib on our aligned crops against dlib's own pipeline on the photos.

For CFP frontal photos (people --people, photos 01-04): the teacher's embedding (our MediaPipe crop ->
padded, upscaled, 5-point shape predictor in a fixed box -> dlib's 150x150 chip) is compared with dlib's
own pipeline on the original photo (HOG detector, shape predictor, chip), and both are scored on genuine
and impostor pairs. Needs the dlib extra (pip install -e ".[dlib]"). The numbers in docs/training.md
("Distillation") come from:

    FACEAPP_MODEL_DIR=../shared/models python scripts/dlib_teacher_check.py --cfp ../shared/datasets/cfp
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp.core.progress import run_to_completion  # noqa: E402
from faceapp.data.cache import align_images  # noqa: E402
from faceapp.data.datasets import ImageItem  # noqa: E402
from faceapp.training.teachers import DlibTeacher  # noqa: E402


def _pairs(emb: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sim = emb @ emb.T
    same = ids[:, None] == ids[None, :]
    upper = np.triu(np.ones_like(same), 1).astype(bool)
    return sim[same & upper], sim[~same & upper]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfp", required=True, help="the CFP folder")
    parser.add_argument("--people", default="401-412", help="CFP people, e.g. 401-412")
    args = parser.parse_args(argv)
    first, last = (int(x) for x in args.people.split("-"))
    items = [ImageItem(Path(args.cfp) / "Data" / "Images" / f"{p:03d}" / "frontal" / f"{i:02d}.jpg", f"{p:03d}")
             for p in range(first, last + 1) for i in (1, 2, 3, 4)]
    with tempfile.TemporaryDirectory() as tmp:
        aligned = run_to_completion(align_images(items, name="dlib-check", cache_root=Path(tmp)))
        crops = np.asarray(aligned.crops)
    teacher = DlibTeacher()
    dlib = teacher.dlib
    hog = dlib.get_frontal_face_detector()
    keep, reference = [], []
    for row, item in enumerate(items):
        rgb = cv2.cvtColor(cv2.imread(str(item.path)), cv2.COLOR_BGR2RGB)
        boxes = list(hog(rgb, 1))
        if not boxes or not aligned.ok[row]:
            continue
        box = max(boxes, key=lambda r: r.width() * r.height())
        vector = np.asarray(teacher.net.compute_face_descriptor(rgb, teacher.predictor(rgb, box), 0))
        reference.append(vector / np.linalg.norm(vector))
        keep.append(row)
    ids = np.asarray([items[r].identity for r in keep])
    ours = teacher.embed(crops[keep])
    theirs = np.stack(reference)
    agree = (ours * theirs).sum(axis=1)
    print(f"{len(keep)} photos of {len(set(ids))} people")
    print(f"cosine(teacher on our crop, dlib on the photo): mean {agree.mean():.3f}, min {agree.min():.3f}")
    for name, emb in (("teacher on our crops", ours), ("dlib on the photos", theirs)):
        genuine, impostor = _pairs(emb, ids)
        print(f"{name}: genuine {genuine.mean():.3f} +- {genuine.std():.3f}, impostor {impostor.mean():.3f} "
              f"+- {impostor.std():.3f}, overlap {int((impostor >= genuine.min()).sum())} impostor pairs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
