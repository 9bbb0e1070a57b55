"""Re-embedding: when the active model changes, embed every stored aligned crop with it.

A cancellable generator of Progress. Work is committed batch by batch, and only crops without a
template of the new model are fetched, so a cancelled or killed job resumes where it stopped (run it
again). Identities enrolled without stored crops cannot be re-embedded: they are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faceapp.core.progress import CancelToken, EtaClock, Job, Progress
from faceapp.services.gallery import EmbedderLike, default_operator, model_spec
from faceapp.storage import AuditEntry, Store


@dataclass
class ReembedReport:
    """What a re-embedding run did."""

    model_id: str
    embedded: int = 0                                  # templates created in this run
    remaining: int = 0                                 # crops still without a template (non-zero if cancelled)
    without_crops: list[tuple[int, str]] = field(default_factory=list)   # identities that cannot be re-embedded
    cancelled: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "embedded": self.embedded, "remaining": self.remaining,
                "cancelled": self.cancelled,
                "identities_without_crops": [{"id": i, "name": n} for i, n in self.without_crops]}


def reembed_gallery(store: Store, embedder: EmbedderLike, *, batch_size: int = 32, cancel: CancelToken | None = None,
                    operator: str | None = None) -> Job[ReembedReport]:
    """Create templates of ``embedder``'s model for every stored crop lacking one (see module docstring).

    Cancelling stops after the current batch and returns a report with ``cancelled=True`` (what was
    done stays done).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cancel = cancel or CancelToken()
    spec = model_spec(embedder)
    store.models.register(spec)
    report = ReembedReport(model_id=spec.model_id, without_crops=store.templates.identities_without_crops())
    total = store.templates.count_crops_to_embed(spec.model_id)
    clock = EtaClock(total)
    yield Progress("reembed", 0, total, message=f"{total} crops to embed with {spec.model_id}")
    after = 0
    while not cancel.cancelled:
        page = store.templates.crops_to_embed(spec.model_id, after_id=after, limit=batch_size)
        if not page:
            break
        vectors = embedder.embed([crop.image() for crop in page])
        report.embedded += store.templates.add_crop_templates(spec, [crop.id for crop in page], vectors)
        after = page[-1].id
        yield Progress("reembed", report.embedded, total, eta_s=clock.eta(report.embedded),
                       metrics={"crops_per_s": round(clock.rate(report.embedded), 1)})
    report.cancelled = cancel.cancelled
    report.remaining = store.templates.count_crops_to_embed(spec.model_id)
    store.audit.append(AuditEntry("reembed", model_id=spec.model_id, operator=operator or default_operator(),
                                  decision="cancelled" if report.cancelled else "done",
                                  details={"embedded": report.embedded, "remaining": report.remaining,
                                           "identities_without_crops": len(report.without_crops)}))
    return report
