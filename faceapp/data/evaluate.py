"""Evaluating an embedding model on a pairs protocol or a gallery/probe identification split.

    from faceapp.data import evaluate
    report = run_to_completion(evaluate("models/mine", "cfp", "../shared/datasets/cfp", cfp_protocol="FP"))

Protocol images are aligned once through the alignment cache (each image once, however many pairs use
it); images where no face is found make their pairs *failed pairs*, counted as errors and reported
(see ``faceapp.evaluation.verification``). The same scoring serves the trainer's per-epoch validation
(which embeds with the net being trained: ``faceapp.training.embed``) and the Thresholds tab.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from faceapp.core.progress import CancelToken, EtaClock, Job, Progress
from faceapp.data.cache import AlignedSet, AlignSettings, align_images
from faceapp.data.datasets import DatasetSpec, ImageItem, scan_dataset
from faceapp.embedding.embedder import Embedder
from faceapp.evaluation.identification import IdentificationReport, identification_report
from faceapp.evaluation.protocols import PairProtocol, read_protocol
from faceapp.evaluation.verification import VerificationReport, pair_scores, verification_report

EmbedFn = Callable[[np.ndarray], np.ndarray]
EMBED_CHUNK = 256


def embed_aligned(embed_fn: EmbedFn, aligned: AlignedSet, *, cancel: CancelToken | None = None,
                  chunk: int = EMBED_CHUNK, stage: str = "embed") -> Job[np.ndarray]:
    """Embeddings of every aligned image (rows of failed images stay zero), with progress."""
    rows = np.flatnonzero(aligned.ok)
    out: np.ndarray | None = None
    clock = EtaClock(rows.size)
    for start in range(0, rows.size, chunk):
        if cancel is not None:
            cancel.raise_if_cancelled("evaluation")
        part = rows[start:start + chunk]
        emb = embed_fn(np.asarray(aligned.crops[part]))
        if out is None:
            out = np.zeros((len(aligned), emb.shape[1]), dtype=np.float32)
        out[part] = emb
        done = start + part.size
        yield Progress(stage, done, rows.size, eta_s=clock.eta(done), message=aligned.name)
    return out if out is not None else np.zeros((len(aligned), 1), dtype=np.float32)


def protocol_items(protocol: PairProtocol) -> list[ImageItem]:
    """The protocol's images as cache items (identity: the image's folder name, for the manifest only)."""
    return [ImageItem(path=p, identity=p.parent.name) for p in protocol.images]


def align_protocol(protocol: PairProtocol, *, settings: AlignSettings = AlignSettings(), cache_root: Path | None = None,
                   cancel: CancelToken | None = None) -> Job[AlignedSet]:
    """Align (or reuse the cache of) every image of the protocol."""
    protocol.check_files()
    aligned = yield from align_images(protocol_items(protocol), name=protocol.name, settings=settings,
                                      cache_root=cache_root, cancel=cancel)
    return aligned


def score_protocol(embeddings: np.ndarray, aligned: AlignedSet, protocol: PairProtocol, *,
                   failure_policy: str = "wrong") -> VerificationReport:
    """The verification report of a protocol from per-image embeddings (failed images: no crop)."""
    scores, valid = pair_scores(embeddings, protocol.pairs, aligned.ok)
    return verification_report(scores, protocol.same, folds=protocol.folds, valid=valid, protocol=protocol.name,
                               n_images=len(aligned), n_failed_images=aligned.n_failed,
                               failure_policy=failure_policy)


def _embedder(model: str | Path | Embedder | None, device: str, flip_tta: bool) -> Embedder:
    if isinstance(model, Embedder):
        return model
    return Embedder.load(model, device=device, flip_tta=flip_tta)


def evaluate_protocol(model: str | Path | Embedder | None, protocol: PairProtocol, *, flip_tta: bool = False,
                      failure_policy: str = "wrong", device: str = "auto", settings: AlignSettings = AlignSettings(),
                      cache_root: Path | None = None, cancel: CancelToken | None = None) -> Job[VerificationReport]:
    """Verification metrics of a model folder (or a loaded ``Embedder``) on ``protocol``.

    Yields progress for alignment (first use only) and embedding; returns the ``VerificationReport``
    with the model id, whether it is trained, and flip-TTA in ``extra``.
    """
    aligned = yield from align_protocol(protocol, settings=settings, cache_root=cache_root, cancel=cancel)
    embedder = _embedder(model, device, flip_tta)
    embeddings = yield from embed_aligned(embedder.embed, aligned, cancel=cancel)
    report = score_protocol(embeddings, aligned, protocol, failure_policy=failure_policy)
    report.extra.update({"model": embedder.model_id, "trained": embedder.trained, "flip_tta": embedder.flip_tta,
                         "alignment_cache": str(aligned.folder), "detectors": aligned.summary.get("detectors", {})})
    return report


def evaluate(model: str | Path | Embedder | None, fmt: str, pairs: str | Path, root: str | Path | None = None, *,
             cfp_protocol: str = "FF", folds: Iterable[int] | None = None, **kwargs: Any) -> Job[VerificationReport]:
    """Read a protocol (``fmt`` "lfw" or "cfp") and evaluate ``model`` on it; see ``evaluate_protocol``."""
    protocol = read_protocol(fmt, pairs, root, cfp_protocol=cfp_protocol, folds=folds)
    report = yield from evaluate_protocol(model, protocol, **kwargs)
    return report


def evaluate_identification(model: str | Path | Embedder | None, data: str | Path | DatasetSpec, *,
                            n_gallery: int = 1, flip_tta: bool = False, device: str = "auto",
                            settings: AlignSettings = AlignSettings(), cache_root: Path | None = None,
                            cancel: CancelToken | None = None) -> Job[IdentificationReport]:
    """Closed-set rank-1/rank-5 on a dataset folder: per identity the first ``n_gallery`` images with a
    face are the gallery, the others are probes (probes without a face count as misses)."""
    spec = data if isinstance(data, DatasetSpec) else DatasetSpec(path=str(data))
    listing = scan_dataset(spec)
    aligned = yield from align_images(listing.items, name=listing.name, settings=settings, cache_root=cache_root,
                                      cancel=cancel)
    embedder = _embedder(model, device, flip_tta)
    embeddings = yield from embed_aligned(embedder.embed, aligned, cancel=cancel)
    return identification_report(embeddings, aligned.identities, aligned.ok, n_gallery)
