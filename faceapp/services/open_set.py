"""Open-set identification measured through the real services: enrol a gallery, probe it with the
enrolled people's other images and with strangers, count rank-1 hits and correct "unknown" answers.

``att_protocol`` builds the AT&T split (s1-s20 enrolled from 5 images each, probed with their other 5;
s21-s40 strangers, all 10 images). ``scripts/att_open_set.py`` prints the numbers for the active model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from faceapp.core.errors import DatasetError, FaceAppError, NoFaceError
from faceapp.core.progress import CancelToken, Job, Progress, run_to_completion
from faceapp.services.enrollment import EnrollmentService
from faceapp.services.gallery import EmbedderLike, Gallery
from faceapp.services.probe import main_face
from faceapp.storage import NewIdentity, Store

if TYPE_CHECKING:
    from faceapp.vision.pipeline import FacePipeline


@dataclass(frozen=True)
class OpenSetProtocol:
    """Gallery images per identity name, and probes as (image, true name, or None for a stranger)."""

    gallery: dict[str, list[Path]]
    probes: list[tuple[Path, str | None]]


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


@dataclass
class OpenSetReport:
    """Counts and rates of one run. Probes without a face count as wrong answers, never dropped."""

    model_id: str
    trained: bool
    thresholds: dict[str, Any]
    enrolled_identities: int = 0
    enrolled_templates: int = 0
    enrol_rejected: int = 0           # gallery images refused by the quality gate
    enrol_failed: list[str] = field(default_factory=list)   # identities with no accepted image
    genuine_probes: int = 0           # probes of enrolled people (including no-face ones)
    stranger_probes: int = 0          # probes of strangers (including no-face ones)
    probe_failures: int = 0           # probes where no face was found
    rank1_hits: int = 0               # genuine probes whose top candidate is the right person
    identified: int = 0               # genuine probes answered with the right person at the threshold
    strangers_unknown: int = 0        # strangers answered "unknown"
    genuine_scores: list[float] = field(default_factory=list)    # best score of each genuine probe
    stranger_scores: list[float] = field(default_factory=list)   # best score of each stranger probe

    @property
    def rank1_rate(self) -> float | None:
        """Closed-set rank-1 identification rate over genuine probes (threshold ignored)."""
        return _rate(self.rank1_hits, self.genuine_probes)

    @property
    def identification_rate(self) -> float | None:
        """Genuine probes answered with the right person at the identify threshold (DIR)."""
        return _rate(self.identified, self.genuine_probes)

    @property
    def stranger_rejection_rate(self) -> float | None:
        """Strangers correctly called "unknown" at the identify threshold."""
        return _rate(self.strangers_unknown, self.stranger_probes)

    def as_dict(self) -> dict[str, Any]:
        def mean(values: list[float]) -> float | None:
            return round(float(np.mean(values)), 4) if values else None

        return {
            "model_id": self.model_id, "trained": self.trained, "thresholds": self.thresholds,
            "enrolled_identities": self.enrolled_identities, "enrolled_templates": self.enrolled_templates,
            "enrol_rejected": self.enrol_rejected, "enrol_failed": self.enrol_failed,
            "genuine_probes": self.genuine_probes, "stranger_probes": self.stranger_probes,
            "probe_failures": self.probe_failures, "rank1_rate": self.rank1_rate,
            "identification_rate": self.identification_rate, "stranger_rejection_rate": self.stranger_rejection_rate,
            "mean_genuine_best_score": mean(self.genuine_scores), "mean_stranger_best_score": mean(self.stranger_scores),
        }


def att_protocol(att_root: str | Path, enrolled: Sequence[int] = range(1, 21), strangers: Sequence[int] = range(21, 41),
                 enrol_images: Sequence[int] = range(1, 6), probe_images: Sequence[int] = range(6, 11)) -> OpenSetProtocol:
    """The AT&T split: ``s<i>/<j>.pgm``; DatasetError naming the first missing file."""
    root = Path(att_root)
    gallery = {f"s{i}": [root / f"s{i}" / f"{j}.pgm" for j in enrol_images] for i in enrolled}
    probes: list[tuple[Path, str | None]] = [(root / f"s{i}" / f"{j}.pgm", f"s{i}") for i in enrolled for j in probe_images]
    probes += [(root / f"s{i}" / f"{j}.pgm", None) for i in strangers for j in range(1, 11)]
    for path in [p for paths in gallery.values() for p in paths] + [p for p, _ in probes]:
        if not path.is_file():
            raise DatasetError(f"AT&T image {path} not found (expected the att_faces layout s<1..40>/<1..10>.pgm)")
    return OpenSetProtocol(gallery, probes)


def run_open_set(store: Store, embedder: EmbedderLike, pipeline: "FacePipeline", protocol: OpenSetProtocol, *,
                 top_k: int = 5, cancel: CancelToken | None = None) -> Job[OpenSetReport]:
    """Enrol ``protocol.gallery`` into ``store`` (one transaction per identity), then identify every probe
    through the gallery service (each decision audited). Yields Progress; returns the OpenSetReport."""
    cancel = cancel or CancelToken()
    service = EnrollmentService(store, embedder, pipeline=pipeline, duplicate_check=False)
    total = len(protocol.gallery) + len(protocol.probes)
    done = 0
    enrolled = 0
    templates = rejected = 0
    failed: list[str] = []
    for name, images in protocol.gallery.items():
        cancel.raise_if_cancelled("open-set evaluation")
        try:
            result = run_to_completion(service.enroll(NewIdentity(name), images, cancel=cancel))
            enrolled += 1
            templates += len(result.record.template_ids)
            rejected += len(result.rejected)
        except FaceAppError:
            failed.append(name)
            rejected += len(images)
        done += 1
        yield Progress("enroll", done, total, message=name)
    gallery = Gallery(store, service.model, embedder.card)
    report = OpenSetReport(model_id=service.model.model_id, trained=bool(getattr(embedder, "trained", False)),
                           thresholds=gallery.thresholds().as_dict(), enrolled_identities=enrolled,
                           enrolled_templates=templates, enrol_rejected=rejected, enrol_failed=failed)
    aligned: list[tuple[np.ndarray, str | None, str]] = []
    for path, truth in protocol.probes:             # detect every probe, then embed them in batches
        cancel.raise_if_cancelled("open-set evaluation")
        if truth is None:
            report.stranger_probes += 1
        else:
            report.genuine_probes += 1
        try:
            face, _count = main_face(pipeline, path)
            aligned.append((face.image, truth, path.name))
        except NoFaceError:
            report.probe_failures += 1
        done += 1
        yield Progress("detect", done, total)
    embeddings = embedder.embed([crop for crop, _, _ in aligned]) if aligned else np.empty((0, gallery.model.embedding_dim))
    for (_crop, truth, name), embedding in zip(aligned, embeddings):
        decision = gallery.identify(embedding, top_k=top_k, details={"probe": name})
        best = decision.best
        best_score = best.score if best else -1.0
        if truth is None:
            report.stranger_scores.append(best_score)
            report.strangers_unknown += int(decision.is_unknown)
        else:
            report.genuine_scores.append(best_score)
            report.rank1_hits += int(best is not None and best.name == truth)
            report.identified += int(not decision.is_unknown and best is not None and best.name == truth)
    yield Progress("identify", total, total, metrics={"rank1": report.rank1_hits, "unknown": report.strangers_unknown})
    return report
