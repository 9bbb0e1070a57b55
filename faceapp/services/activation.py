"""Activating a model: load it, re-embed the gallery's stored crops with it, then hand it to the caller.

    result = run_to_completion(activate_model(store, "models/mine"), print_progress)
    result.embedder          # switch the live pipeline to it (the GUI: AppContext.activate_embedder)

Re-embedding is the resumable job of ``faceapp.services.reembed``: cancelling keeps what was done and
raises ``CancelledError`` (the caller keeps the old model, since the new one cannot search the whole
gallery yet); activating again finishes the rest. Identities without stored crops cannot be re-embedded;
the result lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceapp.core.errors import CancelledError
from faceapp.core.progress import CancelToken, Job, Progress
from faceapp.services.gallery import default_operator
from faceapp.services.reembed import ReembedReport, reembed_gallery


@dataclass
class ActivationResult:
    """The loaded model and what re-embedding did (``report`` is None without a store)."""

    embedder: Any
    report: ReembedReport | None

    def summary(self) -> str:
        """One line for the log and the banner."""
        text = f"model {self.embedder.model_id} is active"
        if self.report is not None:
            text += f"; {self.report.embedded} stored crops re-embedded"
            if self.report.without_crops:
                text += (f"; {len(self.report.without_crops)} identities have no stored crop and cannot be "
                         "searched with this model (enrol them again)")
        return text


def activate_model(store: Any, model_dir: str | Path, *, device: str = "auto", batch_size: int = 32,
                   cancel: CancelToken | None = None, operator: str | None = None) -> Job[ActivationResult]:
    """Load the model folder and re-embed every stored crop lacking a template of it (see module docstring)."""
    from faceapp.embedding.embedder import Embedder
    from faceapp.storage import AuditEntry

    yield Progress("activate", message=f"loading the model in {model_dir}")
    embedder = Embedder.load(Path(model_dir), device=device)
    if store is None:
        return ActivationResult(embedder, None)
    report = yield from reembed_gallery(store, embedder, batch_size=batch_size, cancel=cancel, operator=operator)
    if report.cancelled:
        raise CancelledError(f"activating {embedder.model_id} cancelled with {report.remaining} stored crops still to "
                             "re-embed; the previous model stays active (activate again to finish)")
    store.audit.append(AuditEntry("activate-model", model_id=embedder.model_id, operator=operator or default_operator(),
                                  details={"folder": str(model_dir), "reembedded": report.embedded}))
    yield Progress("activate", report.embedded, report.embedded, message=f"{embedder.model_id} ready")
    return ActivationResult(embedder, report)
