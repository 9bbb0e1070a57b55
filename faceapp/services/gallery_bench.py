"""Enrolment throughput for ``faceapp bench``: real AT&T photos through the whole enrolment path
(read, detect, align, quality gate, embed, one transaction per identity) into a throw-away SQLite
file, and the transaction alone (precomputed crops and embeddings)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceapp.core.progress import run_to_completion
from faceapp.services.enrollment import EnrollmentService
from faceapp.services.gallery import EmbedderLike
from faceapp.storage import NewIdentity, NewSample, Store

if TYPE_CHECKING:
    from faceapp.vision.pipeline import FacePipeline


def enroll_throughput(att_root: str | Path, embedder: EmbedderLike, pipeline: "FacePipeline", *,
                      identities: int = 10, images_per_identity: int = 5) -> dict[str, Any]:
    """Images/s and identities/s end to end, and ms per enrolment transaction (5 crops + templates)."""
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
