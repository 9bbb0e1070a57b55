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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from faceapp.matching.index import GalleryIndex, normalize_rows

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


@dataclass(frozen=True)
class EmbeddingStats:
    """The real embedding distribution of one model: mean and Cholesky factors of the covariance of identity
    centres (between) and of templates around their centre (within), from real aligned photos."""

    model_id: str
    source: str
    identities: int
    images: int
    mean: np.ndarray
    between: np.ndarray
    within: np.ndarray

    def sample(self, templates: int, *, per_identity: int = 5, seed: int = 0, chunk: int = 100_000):
        """Yield (template ids, identity ids, unit rows) chunks: centres drawn from the between-identity
        Gaussian, ``per_identity`` templates around each with the within-identity spread."""
        rng = np.random.default_rng(seed)
        dim = self.mean.size
        for start in range(0, templates, chunk):
            ids = np.arange(start, min(templates, start + chunk), dtype=np.int64)
            identities = ids // per_identity
            first, last = int(identities[0]), int(identities[-1])
            centres = self.centres(first, last + 1)
            rows = centres[identities - first] + rng.standard_normal((ids.size, dim), dtype=np.float32) @ self.within.T
            yield ids, identities, normalize_rows(rows)

    def centres(self, first: int, stop: int) -> np.ndarray:
        """Identity centres ``first..stop-1`` (the same for the same ids: seeded by the identity range)."""
        out = np.empty((stop - first, self.mean.size), dtype=np.float32)
        block = 4096
        for begin in range(first - first % block, stop, block):
            rng = np.random.default_rng(1_000_003 + begin // block)
            chunk = self.mean + rng.standard_normal((block, self.mean.size), dtype=np.float32) @ self.between.T
            lo, hi = max(begin, first), min(begin + block, stop)
            out[lo - first:hi - first] = chunk[lo - begin:hi - begin]
        return out

    def probes(self, count: int, templates: int, *, per_identity: int = 5, seed: int = 1) -> np.ndarray:
        """Genuine probes: a fresh draw around the centres of ``count`` random enrolled identities."""
        rng = np.random.default_rng(seed)
        identities = rng.integers(0, max(1, templates // per_identity), count)
        centres = np.stack([self.centres(int(i), int(i) + 1)[0] for i in identities])
        return normalize_rows(centres + rng.standard_normal(centres.shape, dtype=np.float32) @ self.within.T)


def _factor(cov: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov.astype(np.float64))
    return (vectors * np.sqrt(np.clip(values, 0.0, None))).astype(np.float32)


def embedding_stats(embeddings: np.ndarray, labels: np.ndarray, *, model_id: str, source: str,
                    min_images: int = 3) -> EmbeddingStats:
    """Fit ``EmbeddingStats`` to real unit embeddings (rows) with identity ``labels``."""
    vectors = normalize_rows(embeddings)
    keep = [label for label, n in zip(*np.unique(labels, return_counts=True)) if n >= min_images]
    if len(keep) < 10:
        raise ValueError(f"need at least 10 identities with {min_images}+ images, got {len(keep)}")
    centres, residuals = [], []
    for label in keep:
        rows = vectors[labels == label]
        centre = rows.mean(axis=0)
        centres.append(centre)
        residuals.append((rows - centre) * np.sqrt(len(rows) / (len(rows) - 1)))
    centres_m = np.stack(centres)
    within = np.concatenate(residuals)
    return EmbeddingStats(model_id=model_id, source=source, identities=len(keep), images=int(within.shape[0]),
                          mean=centres_m.mean(axis=0).astype(np.float32),
                          between=_factor(np.cov(centres_m, rowvar=False)),
                          within=_factor(within.T @ within / within.shape[0]))


def real_embedding_stats(model: str | Path | None = None, dataset: str | Path | None = None,
                         progress: Callable[[str], None] | None = None) -> EmbeddingStats:
    """``EmbeddingStats`` of the active (or given) model on real aligned photos (default: the CelebA subset,
    299 people), cached under the user cache folder per model id and dataset."""
    from faceapp.core.paths import cache_dir, datasets_dir
    from faceapp.core.progress import run_to_completion
    from faceapp.data.cache import align_images
    from faceapp.data.datasets import DatasetSpec, scan_dataset
    from faceapp.data.evaluate import embed_aligned
    from faceapp.embedding import Embedder

    embedder = Embedder.load(model, device="cpu")
    root = Path(dataset or datasets_dir() / "celeba_subset")
    cached = cache_dir() / "bench" / f"embedding-stats-{embedder.model_id.replace('@', '-')}-{root.name}.npz"
    if cached.is_file():
        data = np.load(cached, allow_pickle=False)
        return EmbeddingStats(model_id=embedder.model_id, source=root.name, identities=int(data["identities"]),
                              images=int(data["images"]), mean=data["mean"], between=data["between"],
                              within=data["within"])
    if progress:
        progress(f"embedding {root.name} with {embedder.model_id} for the synthetic gallery (once per model)")
    listing = scan_dataset(DatasetSpec(str(root)))
    aligned = run_to_completion(align_images(listing.items, name=listing.name))
    embeddings = run_to_completion(embed_aligned(embedder.embed, aligned))
    labels = np.asarray(aligned.identities)
    stats = embedding_stats(embeddings[aligned.ok], labels[aligned.ok], model_id=embedder.model_id,
                            source=root.name)
    cached.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cached, identities=stats.identities, images=stats.images, mean=stats.mean, between=stats.between,
             within=stats.within)
    return stats


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


def ann_case(stats: EmbeddingStats, templates: int, *, kind: str | None = None, per_identity: int = 5,
             probes: int = 200, top_k: int = 5) -> dict[str, Any]:
    """Build a FAISS index over ``templates`` rows drawn from ``stats`` and measure it against the exact
    search of the same rows: build seconds, memory, exact ms/query, recall@1 and recall@5 of the top-``top_k``
    identities over genuine probes. Returns the numbers, the index and the probes (for timing)."""
    from faceapp.matching.ann import FaissIndex

    index = FaissIndex(stats.model_id, stats.mean.size, kind=kind)
    for ids, identities, rows in stats.sample(templates, per_identity=per_identity):
        index.add(ids, identities, rows)
    build_s = index.build()
    queries = stats.probes(probes, templates, per_identity=per_identity)
    metrics = {"templates": templates, "identities": index.identity_count, "kind": index.kind,
               "build_s": round(build_s, 1), "rows_mb": round(index.matrix.nbytes / 2**20, 1),
               "index_mb": round((index.memory_bytes() - index.matrix.nbytes) / 2**20, 1),
               **recall_against_exact(index, queries, top_k), "distribution": stats.source}
    return {"metrics": metrics, "index": index, "probes": queries}


def recall_against_exact(index: GalleryIndex, probes: np.ndarray, top_k: int = 5) -> dict[str, Any]:
    """recall@1 and recall@``top_k`` of ``index``'s top identities against the exact search of its own rows, and
    the exact search's median ms a query."""
    exact, exact_ms = [], []
    for probe in probes:
        begin = time.perf_counter()
        exact.append([i for i, _ in GalleryIndex.top_identities(index, probe, top_k)])
        exact_ms.append((time.perf_counter() - begin) * 1000.0)
    approx = [[i for i, _ in index.top_identities(probe, top_k)] for probe in probes]
    return {"exact_median_ms": round(float(np.median(exact_ms)), 2),
            "recall@1": round(float(np.mean([a[:1] == e[:1] for a, e in zip(approx, exact)])), 4),
            f"recall@{top_k}": round(float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact)])), 4),
            "probes": int(len(probes))}


def pgvector_case(stats: EmbeddingStats, templates: int, url: str, *, per_identity: int = 5,
                  probes: int = 200, top_k: int = 5) -> dict[str, Any]:
    """Enrol ``templates`` rows drawn from ``stats`` into the PostgreSQL gallery at ``url`` (one transaction
    per identity), open its pgvector search (vectors pushed, HNSW index maintained) and measure it against the
    exact search: seconds to push, table + index size, recall@1 / recall@``top_k``."""
    from faceapp.services.gallery import Gallery
    from faceapp.storage import ModelSpec, NewIdentity, NewSample, Store
    from faceapp.storage.vectors import TABLE

    store = Store(url)
    model = ModelSpec(stats.model_id, "bench", int(stats.mean.size))
    for ids, identities, rows in stats.sample(templates, per_identity=per_identity):
        for identity in np.unique(identities):
            store.templates.enroll(NewIdentity(f"i{identity}"),
                                   [NewSample(embedding=r) for r in rows[identities == identity]], model)
    started = time.perf_counter()
    gallery = Gallery(store, model, search="pgvector")
    build_s = time.perf_counter() - started
    if gallery.search.engine != "pgvector":
        raise RuntimeError(gallery.search.notice or "pgvector search unavailable")
    from sqlalchemy import text

    with store.engine.connect() as connection:
        size = int(connection.execute(text(f"SELECT pg_total_relation_size('{TABLE}')")).scalar() or 0)
    queries = stats.probes(probes, templates, per_identity=per_identity)
    metrics = {"templates": templates, "identities": gallery.index.identity_count, "kind": "pgvector hnsw",
               "build_s": round(build_s, 1), "rows_mb": round(gallery.index.matrix.nbytes / 2**20, 1),
               "index_mb": round(size / 2**20, 1), **recall_against_exact(gallery.index, queries, top_k),
               "distribution": stats.source}
    return {"metrics": metrics, "index": gallery.index, "probes": queries, "store": store}
