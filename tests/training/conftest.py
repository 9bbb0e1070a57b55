"""Fixtures of the trainer's tests: a small pack of AT&T crops."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture(scope="session")
def att_pack(att: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """AT&T people s1-s12, ten photos each resized to 112x112 (no alignment: the pack's plumbing is under
    test), WebP-encoded as ``faceapp.training.pack`` writes them, named ``att/001``..``att/012``."""
    blobs, labels, names = [], [], []
    for person in range(1, 13):
        names.append(f"att/{person:03d}")
        for i in range(1, 11):
            img = cv2.resize(cv2.imread(str(att / f"s{person}" / f"{i}.pgm")), (112, 112))
            blobs.append(cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 80])[1].tobytes())
            labels.append(person - 1)
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    path = tmp_path_factory.mktemp("pack") / "att.npz"
    np.savez(path, blob=np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets=offsets,
             labels=np.asarray(labels, dtype=np.int32), identities=np.asarray(names),
             data_card=np.asarray(json.dumps([{"name": "att", "images": len(blobs)}])))
    return path
