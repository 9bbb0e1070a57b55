"""Shared data of the page-model tests (not a test module): the tiny model spec and random enrolment samples."""

from __future__ import annotations

import numpy as np

from faceapp.storage import ModelSpec, NewSample

DIM = 16
MODEL = ModelSpec(model_id="tiny@000000000001", name="tiny", embedding_dim=DIM, folder=None, sha256="0" * 64)


def samples(n: int, seed: int, *, tagged: bool = False) -> list[NewSample]:
    """``n`` samples with random crops and unit embeddings; ``tagged`` adds quality 0.5 and ``img<i>.jpg`` sources."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    extra = (lambda i: {"quality": 0.5, "source": f"img{i}.jpg"}) if tagged else (lambda i: {})
    return [NewSample(crop=rng.integers(0, 256, (112, 112, 3), dtype=np.uint8), embedding=vectors[i], **extra(i))
            for i in range(n)]
