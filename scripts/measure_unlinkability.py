"""Unlinkable templates measured with the shipped model on real aligned crops (AT&T, aligned by MediaPipe).

Every AT&T person (s1-s40) is enrolled from photos 1-5 into a plain sealed gallery P and two unlinkable
galleries A and A' (same photos), and from photos 6-10 into an unlinkable gallery B; A, A' and B are made
--draws times with fresh keys (mean over draws, with the AUC's spread). Reports:

* verification inside a gallery: the Gallery service's verify score of every photo 6-10 against its person,
  in A and in P (the largest difference; they must agree to 1e-5), identification's top-1 agreement, and
  the time to map one probe (the only extra work per query);
* linkage across galleries: cosine scores between the templates stored (decrypted) in two galleries, for
  the same person (mated) and different people (non-mated), with the ROC AUC of telling them apart
  (0.5 = chance), for A x B (other photos) and A x A' (the very same photos), against the plain P's scores.

    python scripts/measure_unlinkability.py [--people 40] [--draws 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np


def auc(mated: np.ndarray, non_mated: np.ndarray) -> float:
    """Probability that a mated score beats a non-mated one (ties count half)."""
    scores = np.concatenate([mated, non_mated])
    ranks = scores.argsort().argsort() + 1.0
    return float((ranks[:len(mated)].sum() - len(mated) * (len(mated) + 1) / 2) / (len(mated) * len(non_mated)))


def linkage(first: np.ndarray, first_ids: np.ndarray, second: np.ndarray, second_ids: np.ndarray) -> dict[str, float]:
    """Mated / non-mated cosine scores between two sets of stored templates, and their AUC."""
    scores = first @ second.T
    same = first_ids[:, None] == second_ids[None, :]
    mated, non_mated = scores[same], scores[~same]
    return {"mated_mean": float(mated.mean()), "mated_std": float(mated.std()),
            "non_mated_mean": float(non_mated.mean()), "non_mated_std": float(non_mated.std()),
            "auc": auc(mated, non_mated), "mated_pairs": int(mated.size), "non_mated_pairs": int(non_mated.size)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=40, help="AT&T people s1..sN (default 40)")
    parser.add_argument("--draws", type=int, default=5, help="unlinkable gallery sets, each with fresh keys (default 5)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from faceapp.core.paths import datasets_dir
    from faceapp.core.progress import run_to_completion
    from faceapp.data.cache import align_images
    from faceapp.data.datasets import DatasetSpec, scan_dataset
    from faceapp.embedding import Embedder
    from faceapp.services.gallery import Gallery, model_spec
    from faceapp.storage import NewIdentity, NewSample, Store
    from faceapp.storage.keys import KeyOptions

    listing = scan_dataset(DatasetSpec(path=str(datasets_dir() / "att_faces"), identities=f"s1-s{args.people}"))
    aligned = run_to_completion(align_images(listing.items, name=f"att-unlinkable-{args.people}"))
    embedder = Embedder.load()
    spec = model_spec(embedder)
    rows = np.flatnonzero(aligned.ok)
    crops = np.stack([np.asarray(aligned.crops[r]) for r in rows])
    names = [aligned.identities[r].split("/")[-1] for r in rows]
    photo = [int(Path(str(listing.items[r].path)).stem) for r in rows]
    vectors = embedder.embed(crops)
    halves = {"enrol": [i for i, p in enumerate(photo) if p <= 5], "probe": [i for i, p in enumerate(photo) if p > 5]}

    report: dict = {"model": embedder.model_id, "trained": embedder.trained, "people": len(set(names)),
                    "aligned": int(len(rows)), "images": len(listing.items)}
    import time

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("FACEAPP_KEY_DIR", str(Path(tmp) / "keys"))

        def gallery(label: str, half: str, unlinkable: bool) -> Store:
            """A new sealed gallery (a fresh key, so a fresh secret transform) enrolled from one half."""
            store = Store(Path(tmp) / f"{label}.db", keys=KeyOptions.from_environment(use_keyring=False,
                                                                                       unlinkable=unlinkable))
            for name in dict.fromkeys(names):
                samples = [NewSample(crop=crops[i], embedding=vectors[i], source=f"{name}/{photo[i]}")
                           for i in halves[half] if names[i] == name]
                store.templates.enroll(NewIdentity(name), samples, spec)
            return store

        def stored(store: Store) -> tuple[np.ndarray, np.ndarray]:
            """The templates as stored (decrypted), and whose they are."""
            data = store.templates.gallery_rows(spec.model_id, spec.embedding_dim)
            owner = {store.identities.get(n).id: n for n in set(names)}
            return data.embeddings.astype(np.float64), np.asarray([owner[int(i)] for i in data.identity_ids])

        plain_store = gallery("P", "enrol", False)
        plain = Gallery(plain_store, spec, operator="measure")
        p_m, p_n = stored(plain_store)
        plain_b = np.stack([vectors[i] for i in halves["probe"]]).astype(np.float64)
        plain_b_n = np.asarray([names[i] for i in halves["probe"]])
        report["linkage"] = {"plain, other photos (what galleries without the transform leak)":
                             linkage(p_m, p_n, plain_b, plain_b_n), "plain, same photos": linkage(p_m, p_n, p_m, p_n)}
        differences, top1_same, timings, draws = [], 0, [], []
        for draw in range(args.draws):
            a, a2, b = (gallery(f"{label}{draw}", half, True) for label, half in (("A", "enrol"), ("A2", "enrol"),
                                                                                  ("B", "probe")))
            linked = Gallery(a, spec, operator="measure")
            for i in halves["probe"]:
                differences.append(abs(plain.verify(names[i], vectors[i], audit=False).score
                                       - linked.verify(names[i], vectors[i], audit=False).score))
                top1_same += (plain.identify(vectors[i], audit=False).candidates[0].name
                              == linked.identify(vectors[i], audit=False).candidates[0].name)
            for _ in range(300):                    # the cost of mapping one probe (the only extra work per query)
                begin = time.perf_counter()
                a.vault.protect(spec.model_id, vectors[0])
                timings.append(time.perf_counter() - begin)
            (a_m, a_n), (a2_m, a2_n), (b_m, b_n) = stored(a), stored(a2), stored(b)
            draws.append({"unlinkable A x B, other photos": linkage(a_m, a_n, b_m, b_n),
                          "unlinkable A x A', same photos": linkage(a_m, a_n, a2_m, a2_n)})
            for store in (a, a2, b):
                store.close()
        plain_store.close()
        report["draws"] = args.draws
        report["probe_transform_median_us"] = float(np.median(timings) * 1e6)
        report["verify_probes"] = len(differences)
        report["verify_max_abs_difference"] = float(max(differences))
        report["identify_top1_agreement"] = top1_same / len(differences)
        for what in draws[0]:
            rows = [d[what] for d in draws]
            report["linkage"][what] = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
            report["linkage"][what]["auc_std"] = float(np.std([r["auc"] for r in rows]))
            report["linkage"][what]["auc_range"] = [min(r["auc"] for r in rows), max(r["auc"] for r in rows)]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['model']} ({'trained' if report['trained'] else 'UNTRAINED'}), {report['people']} people, "
              f"{report['aligned']}/{report['images']} photos aligned")
        print(f"verify inside a gallery: {report['verify_probes']} probes, largest |score(A) - score(P)| = "
              f"{report['verify_max_abs_difference']:.2e}; identify top-1 agreement {report['identify_top1_agreement']:.3f}; "
              f"mapping a probe costs {report['probe_transform_median_us']:.0f} us (median)")
        for what, row in report["linkage"].items():
            spread = (f" (over {report['draws']} key draws: +- {row['auc_std']:.3f}, range {row['auc_range'][0]:.3f}"
                      f"-{row['auc_range'][1]:.3f})" if "auc_std" in row else "")
            print(f"{what}: mated {row['mated_mean']:+.3f} +- {row['mated_std']:.3f}, non-mated "
                  f"{row['non_mated_mean']:+.3f} +- {row['non_mated_std']:.3f}, AUC {row['auc']:.3f}{spread}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
