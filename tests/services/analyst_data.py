"""Real test data for the analyst services and pages (Trainer, Thresholds, Embeddings), shared by
tests/services and tests/gui: AT&T crops aligned by the real MediaPipe pipeline (through the alignment
cache, so each image is aligned once per session), an enrolled gallery in a real SQLite store, an
LFW-format pairs file over AT&T people, and a small untrained network saved as a real model folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from faceapp.core.progress import run_to_completion
from faceapp.data.cache import align_images
from faceapp.data.datasets import DatasetSpec, scan_dataset
from faceapp.embedding.model_folder import ModelConfig, build_backbone, save_model
from faceapp.services.gallery import model_spec
from faceapp.storage import NewIdentity, NewSample


def att_crops(att: Path, subjects: Iterable[int], per_subject: int = 10) -> tuple[np.ndarray, list[str]]:
    """Aligned crops of AT&T ``s<subject>`` (first ``per_subject`` images with a face) and their names."""
    wanted = ",".join(f"s{s}" for s in subjects)
    listing = scan_dataset(DatasetSpec(path=str(att), identities=wanted))
    aligned = run_to_completion(align_images(listing.items, name=f"att-{wanted.replace(',', '_')}"))
    crops, names, taken = [], [], {}
    for row in np.flatnonzero(aligned.ok):
        name = aligned.identities[row].split("/")[-1]
        if taken.get(name, 0) < per_subject:
            taken[name] = taken.get(name, 0) + 1
            crops.append(np.asarray(aligned.crops[row]))
            names.append(name)
    return np.stack(crops), names


def enrol_att(store, embedder, att: Path, subjects: Iterable[int], per_subject: int = 3) -> dict[str, int]:  # noqa: ANN001
    """Enrol AT&T people with their crops and ``embedder``'s templates; returns name -> templates."""
    crops, names = att_crops(att, subjects, per_subject)
    vectors = embedder.embed(crops)
    spec = model_spec(embedder)
    counts: dict[str, int] = {}
    for name in dict.fromkeys(names):
        rows = [i for i, n in enumerate(names) if n == name]
        samples = [NewSample(crop=crops[i], embedding=vectors[i], source=f"{name}/{k}") for k, i in enumerate(rows)]
        store.templates.enroll(NewIdentity(name), samples, spec)
        counts[name] = len(rows)
    return counts


def att_lfw_pairs(att: Path, tmp: Path, people: Iterable[int] = range(31, 41), per_kind: int = 20,
                  folds: int = 2, seed: int = 0) -> tuple[Path, Path]:
    """An LFW-format protocol over AT&T people: ``folds`` x ``per_kind`` genuine and impostor pairs."""
    root = tmp / "lfw"
    names = [f"s{i}" for i in people]
    for person in names:
        for i in range(1, 11):
            target = root / person / f"{person}_{i:04d}.pgm"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(att / person / f"{i}.pgm", target)
    rng = np.random.default_rng(seed)
    lines = [f"{folds}\t{per_kind}"]
    for _ in range(folds):
        for _ in range(per_kind):
            p = rng.choice(names)
            i, j = rng.choice(np.arange(1, 11), 2, replace=False)
            lines.append(f"{p}\t{i}\t{j}")
        for _ in range(per_kind):
            p, q = rng.choice(names, 2, replace=False)
            lines.append(f"{p}\t{rng.integers(1, 11)}\t{q}\t{rng.integers(1, 11)}")
    pairs = tmp / "pairs.txt"
    pairs.write_text("\n".join(lines) + "\n")
    return pairs, root


def save_untrained_model(folder: Path, *, name: str = "probe-net", dim: int = 32, seed: int = 3) -> Path:
    """A seeded, untrained tiny network saved as a real model folder (loads with ``Embedder.load``)."""
    config = ModelConfig(name=name, backbone="tiny", embedding_dim=dim, input_size=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_backbone(config)
    return save_model(folder, net.eval(), config, {"trained": False})


def model_and_gallery(tmp: Path, att: Path, subjects: Iterable[int], per_subject: int,
                      **model: object) -> tuple[Path, Path, object]:
    """(model folder, SQLite file, Embedder): a saved untrained model and AT&T people enrolled with it."""
    from faceapp.embedding import Embedder
    from faceapp.storage import Store

    folder = save_untrained_model(tmp / "model", **model)  # type: ignore[arg-type]
    embedder = Embedder.load(folder, device="cpu")
    db = tmp / "gallery.db"
    with Store(db) as store:
        enrol_att(store, embedder, att, subjects, per_subject)
    return folder, db, embedder
