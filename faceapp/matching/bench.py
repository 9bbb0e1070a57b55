"""Timing of gallery search at scale (synthetic random unit vectors), for ``faceapp bench``.

``time_identify(100_000)`` builds an index of 100k templates (5 per identity) and times exact top-k
identification of random probes: median and p95 milliseconds per query, after warm-up.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from faceapp.matching.index import GalleryIndex

SCALES = {"identify-1k": 1_000, "identify-10k": 10_000, "identify-100k": 100_000, "identify-1m": 1_000_000}


def synthetic_index(templates: int, dim: int = 128, *, per_identity: int = 5, seed: int = 0,
                    chunk: int = 100_000, use_blas: bool = False) -> GalleryIndex:
    """An index of ``templates`` random unit vectors, ``per_identity`` rows per identity (built in chunks)."""
    rng = np.random.default_rng(seed)
    index = GalleryIndex("synthetic@000000000000", dim, use_blas=use_blas)
    for start in range(0, templates, chunk):
        count = min(chunk, templates - start)
        ids = np.arange(start, start + count, dtype=np.int64)
        index.add(ids, ids // per_identity, rng.standard_normal((count, dim), dtype=np.float32))
    return index


def time_identify(templates: int, dim: int = 128, *, per_identity: int = 5, top_k: int = 5, repeats: int = 50,
                  warmup: int = 5, seed: int = 0, use_blas: bool = False) -> dict[str, Any]:
    """Median/p95 ms of one exact identification (matrix-vector product + per-identity top-k)."""
    started = time.perf_counter()
    index = synthetic_index(templates, dim, per_identity=per_identity, seed=seed, use_blas=use_blas)
    build_s = time.perf_counter() - started
    probes = np.random.default_rng(seed + 1).standard_normal((warmup + repeats, dim), dtype=np.float32)
    times = []
    for number, probe in enumerate(probes):
        begin = time.perf_counter()
        index.top_identities(probe, top_k)
        if number >= warmup:
            times.append((time.perf_counter() - begin) * 1000.0)
    return {"templates": templates, "identities": index.identity_count, "dim": dim, "top_k": top_k,
            "product": "blas" if use_blas else "einsum",
            "median_ms": round(float(np.median(times)), 3), "p95_ms": round(float(np.percentile(times, 95)), 3),
            "repeats": repeats, "build_s": round(build_s, 2), "matrix_mb": round(index.matrix.nbytes / 2**20, 1)}
