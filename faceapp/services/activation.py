"""Activating a model: load it, re-embed the gallery's stored crops with it, then hand it to the caller.

    result = run_to_completion(activate_model(store, "models/mine"), print_progress)
    result.embedder          # switch the live pipeline to it (the GUI: AppContext.activate_embedder)

Re-embedding is the resumable job of ``faceapp.services.reembed``: cancelling keeps what was done and
raises ``CancelledError`` (the caller keeps the old model, since the new one cannot search the whole
gallery yet); activating again finishes the rest. Identities without stored crops cannot be re-embedded;
the result names them.

Before activating, ``activation_preview`` says what the switch means, for the operator to confirm: the
current and the new model's validation numbers and thresholds (and where they come from), the crops to
re-embed and the identities the new model will not find. After it, ``readiness_warnings`` says what is
still wrong with the active model (no calibrated thresholds, identities without its templates); the Live
page shows it for as long as it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from faceapp.core.errors import CancelledError
from faceapp.core.progress import CancelToken, Job, Progress
from faceapp.matching.thresholds import Thresholds, resolve_thresholds
from faceapp.services.gallery import default_operator
from faceapp.services.reembed import ReembedReport, reembed_gallery

NAMES_SHOWN = 8     # identities named in a message before "and N more"


def name_list(names: Sequence[str], limit: int = NAMES_SHOWN) -> str:
    """Names for a message: "a, b, c", or "a, b, ... and 12 more" past ``limit``."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _identities(count: int) -> str:
    return f"{count} identity has" if count == 1 else f"{count} identities have"


def validation_lines(card: Mapping[str, Any] | None) -> list[str]:
    """The model card's validation numbers, one line per protocol: the trainer's best validation
    (``metrics.validation``), then the test protocols (``metrics.test``); [] when the card has none."""
    metrics = (card or {}).get("metrics")
    if not isinstance(metrics, Mapping):
        return []
    entries: list[tuple[str, Mapping[str, Any]]] = []
    validation = metrics.get("validation")
    if isinstance(validation, Mapping) and "accuracy" in validation:
        epoch = validation.get("epoch")
        entries.append((f"validation ({validation.get('protocol', '?')}" + (f", epoch {epoch}" if epoch else "") + ")",
                        validation))
    test = metrics.get("test")
    if isinstance(test, Mapping):
        entries += [(str(v.get("protocol", k)), v) for k, v in test.items()
                    if isinstance(v, Mapping) and "accuracy" in v]
    lines = []
    for label, values in entries:
        text = f"{label}: accuracy {float(values['accuracy']) * 100:.2f}%"
        if values.get("eer") is not None:
            text += f", EER {float(values['eer']) * 100:.2f}%"
        lines.append(text)
    return lines


def calibrated(thresholds: Thresholds) -> bool:
    """True when the thresholds were calibrated for the model (stored for it, or in its card), not defaults."""
    return thresholds.source != "default"


def describe_thresholds(thresholds: Thresholds) -> str:
    """Thresholds for a message: "verify 0.5016, identify 0.5901 (model-card)", or flagged as defaults."""
    text = f"verify {thresholds.verify:.4f}, identify {thresholds.identify:.4f}"
    if not calibrated(thresholds):
        return text + " (defaults: NOT calibrated for this model)"
    return text + f" ({thresholds.source})"


@dataclass(frozen=True)
class ModelFacts:
    """What the operator needs to know about one model to choose it."""

    model_id: str
    folder: str | None
    trained: bool
    validation: list[str]
    thresholds: Thresholds

    def lines(self) -> list[str]:
        out = [self.model_id + ("" if self.trained else " (UNTRAINED)")]
        if self.folder:
            out.append(f"  folder: {self.folder}")
        out += [f"  {line}" for line in self.validation] or ["  no validation numbers in its model card"]
        out.append(f"  thresholds: {describe_thresholds(self.thresholds)}")
        return out


def model_facts(store: Any, model_id: str, card: Mapping[str, Any] | None, folder: str | Path | None) -> ModelFacts:
    """Facts of a model: its card's validation numbers and its thresholds (store > card > defaults)."""
    stored = store.thresholds.get(model_id) if store is not None else None
    return ModelFacts(model_id=model_id, folder=str(folder) if folder else None,
                      trained=(card or {}).get("trained") is True, validation=validation_lines(card),
                      thresholds=resolve_thresholds(stored, card))


@dataclass(frozen=True)
class ActivationPreview:
    """The switch the operator is asked to confirm (``activation_preview``)."""

    new: ModelFacts
    current: ModelFacts | None
    folder: Path
    identities: int = 0                                           # identities in the gallery
    crops_to_embed: int = 0                                       # stored crops lacking a template of the new model
    unreachable: list[str] = field(default_factory=list)          # no template of the new model and no crop to make one

    @property
    def same_model(self) -> bool:
        return self.current is not None and self.current.model_id == self.new.model_id

    def text(self) -> str:
        """The confirmation text: both models side by side, then what activation will do to the gallery."""
        lines = ["New model:"] + self.new.lines() + [""]
        if self.same_model:
            lines = ["This model is already active: activating it again re-embeds what still lacks its templates.",
                     ""] + lines
        lines += ["Current model:"] + self.current.lines() if self.current is not None else ["No model is active now."]
        lines.append("")
        if self.crops_to_embed:
            lines.append(f"Activating re-embeds {self.crops_to_embed} stored crop(s) of the {self.identities} "
                         "enrolled identities with the new model.")
        elif self.identities:
            lines.append(f"The new model already has templates from every stored crop of the {self.identities} "
                         "enrolled identities.")
        if self.unreachable:
            lines.append(f"{_identities(len(self.unreachable))} no stored crop and will NOT be found by the new model "
                         f"(enrol again): {name_list(self.unreachable)}.")
        if not calibrated(self.new.thresholds):
            lines.append("The new model has no calibrated thresholds: calibrate them in the Thresholds tab before "
                         "relying on its answers.")
        return "\n".join(lines)


def activation_preview(store: Any, folder: str | Path, current: Any | None = None) -> ActivationPreview:
    """What activating the model in ``folder`` would change, compared with the ``current`` embedder (or None).

    Reads the folder's config, card and weights hash (not the network) and the gallery's counts: cheap,
    but file and SQL work, so callers run it on a worker.
    """
    from faceapp.embedding.model_folder import model_id_of, read_card, read_config, weights_sha256

    folder = Path(folder)
    config = read_config(folder)
    card = read_card(folder)
    model_id = model_id_of(config.name, weights_sha256(folder))
    new = model_facts(store, model_id, card, folder)
    now = None
    if current is not None:
        now = model_facts(store, current.model_id, getattr(current, "card", None), getattr(current, "folder", None))
    if store is None:
        return ActivationPreview(new=new, current=now, folder=folder)
    with_crops_missing = {i for i, _ in store.templates.identities_without_crops()}
    lacking = store.templates.identities_without_templates(model_id, int(config.embedding_dim))
    return ActivationPreview(new=new, current=now, folder=folder, identities=store.identities.count(),
                             crops_to_embed=store.templates.count_crops_to_embed(model_id),
                             unreachable=[n for i, n in lacking if i in with_crops_missing])


def readiness_warnings(gallery: Any) -> list[str]:
    """What makes the active model's answers untrustworthy now, one sentence each ([] when nothing):
    no calibrated thresholds (none stored for it, none in its card), identities without its templates."""
    warnings = []
    thresholds = gallery.thresholds()
    model_id = gallery.model.model_id
    if not calibrated(thresholds):
        warnings.append(f"Model {model_id} has no calibrated thresholds (none in its model card, none saved for "
                        f"it): deciding at the defaults verify {thresholds.verify:.2f} / identify "
                        f"{thresholds.identify:.2f}. Calibrate them in the Thresholds tab.")
    lacking = gallery.store.templates.identities_without_templates(model_id, gallery.model.embedding_dim)
    if lacking:
        warnings.append(f"{_identities(len(lacking))} no template of model {model_id} and cannot be recognised: "
                        f"{name_list([name for _, name in lacking])}. Re-embed the gallery (`faceapp db reembed`, "
                        "or activate the model again) or enrol them again.")
    return warnings


@dataclass
class ActivationResult:
    """The loaded model and what re-embedding did (``report`` is None without a store)."""

    embedder: Any
    report: ReembedReport | None
    unreachable: list[str] = field(default_factory=list)   # identities without a template of the model after it

    def summary(self) -> str:
        """One line for the log and the banner."""
        text = f"model {self.embedder.model_id} is active"
        if self.report is not None:
            text += f"; {self.report.embedded} stored crops re-embedded"
            if self.unreachable:
                text += (f"; {_identities(len(self.unreachable))} no template of it and no stored crop to make one, "
                         f"so this model cannot find them (enrol them again): {name_list(self.unreachable)}")
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
    unreachable = [n for _, n in store.templates.identities_without_templates(embedder.model_id, embedder.dim)]
    store.audit.append(AuditEntry("activate-model", model_id=embedder.model_id, operator=operator or default_operator(),
                                  details={"folder": str(model_dir), "reembedded": report.embedded,
                                           "identities_without_templates": len(unreachable)}))
    yield Progress("activate", report.embedded, report.embedded, message=f"{embedder.model_id} ready")
    return ActivationResult(embedder, report, unreachable)
