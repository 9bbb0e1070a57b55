"""Gallery benchmarks behind the ``identify-*`` and ``enroll-*`` stages of ``faceapp bench``
(``stages_identify.py``) and ``scripts/bench_gallery.py``.

``time_identify(100_000)`` builds an index of 100k synthetic random unit templates (5 per identity) and
times exact top-k identification of random probes: median and p95 milliseconds per query, after warm-up.
``enroll_throughput`` runs real AT&T photos through the whole enrolment path (read, detect, align, quality
gate, embed, one transaction per identity) into a throw-away SQLite file, and times the transaction alone
(precomputed crops and embeddings).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceapp.matching.index import GalleryIndex

if TYPE_CHECKING:
    from faceapp.services.gallery import EmbedderLike
    from faceapp.vision.pipeline import FacePipeline

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


def stored_gallery(path: str | Path, templates: int, dim: int = 128, *, per_identity: int = 5, seed: int = 0,
                   keys: Any = None) -> tuple[Any, dict[str, Any]]:
    """A SQLite store at ``path`` holding ``templates`` random unit templates (sealed with the gallery key
    unless the key options switch encryption off), written in bulk with known ids; returns the open store
    and how long the writing took."""
    from sqlalchemy import insert

    from faceapp.storage import ModelSpec, Store
    from faceapp.storage.schema import Identity, Template
    from faceapp.storage.catalog import ensure_model

    store = Store(path, keys=keys)
    model = ModelSpec(model_id="synthetic@000000000000", name="synthetic", embedding_dim=dim)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()

    def work(session: Any) -> None:
        ensure_model(session, model)
        identities = -(-templates // per_identity)
        session.execute(insert(Identity), [{"id": i + 1, "name": f"p{i + 1}"} for i in range(identities)])
        for start in range(0, templates, 10_000):
            vectors = rng.standard_normal((min(10_000, templates - start), dim), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            rows = []
            for offset, vector in enumerate(vectors):
                row_id = start + offset + 1
                identity_id = (row_id - 1) // per_identity + 1
                blob, version = store.vault.seal("template", row_id, identity_id, model.model_id,
                                                 vector.astype("<f4").tobytes())
                rows.append({"id": row_id, "identity_id": identity_id, "model_id": model.model_id, "dim": dim,
                             "embedding": blob, "key_version": version})
            session.execute(insert(Template), rows)

    store.uow.write(work)
    return store, {"write_s": round(time.perf_counter() - started, 2), "encrypted": store.encrypted}


def index_from_store(store: Any, dim: int = 128) -> tuple[GalleryIndex, float]:
    """The synthetic model's index loaded from ``store`` the way the workstation loads it (templates opened
    with the gallery key once, here), and the seconds that took."""
    begin = time.perf_counter()
    rows = store.templates.gallery_rows("synthetic@000000000000", dim)
    index = GalleryIndex("synthetic@000000000000", dim)
    index.add(rows.template_ids, rows.identity_ids, rows.embeddings)
    return index, time.perf_counter() - begin


def enroll_throughput(att_root: str | Path, embedder: "EmbedderLike", pipeline: "FacePipeline", *,
                      identities: int = 10, images_per_identity: int = 5) -> dict[str, Any]:
    """Images/s and identities/s end to end, and ms per enrolment transaction (5 crops + templates)."""
    from faceapp.core.progress import run_to_completion
    from faceapp.services.enrollment import EnrollmentService
    from faceapp.storage import NewIdentity, NewSample, Store

    root = Path(att_root)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.db") as store:
        service = EnrollmentService(store, embedder, pipeline=pipeline, duplicate_check=True, operator="bench")
        started = time.perf_counter()
        accepted = 0
        results = []
        for subject in range(1, identities + 1):
            images = [root / f"s{subject}" / f"{i}.pgm" for i in range(1, images_per_identity + 1)]
            result = run_to_completion(service.enroll(NewIdentity(f"s{subject}"), images))
            accepted += len(result.accepted)
            results.append(result)
        elapsed = time.perf_counter() - started
        samples = [[NewSample(crop=c.aligned.image, embedding=t.embedding, quality=c.quality, source=c.source)
                    for c, t in zip(r.accepted, store.templates.for_identity(r.record.identity.id, embedder.model_id))]
                   for r in results]
        tx_times = []
        for number, batch in enumerate(samples):
            begin = time.perf_counter()
            store.templates.enroll(NewIdentity(f"copy{number}"), batch, service.model)
            tx_times.append((time.perf_counter() - begin) * 1000.0)
    tx_times.sort()
    return {"identities": identities, "images": identities * images_per_identity, "accepted": accepted,
            "images_per_s": round(identities * images_per_identity / elapsed, 2),
            "identities_per_s": round(identities / elapsed, 3),
            "transaction_ms_median": round(tx_times[len(tx_times) // 2], 2), "model_id": embedder.model_id}
