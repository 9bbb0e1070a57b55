"""The Thresholds study's model: the active model's genuine and impostor scores on a labelled source, their
curves, the operating point of the verify threshold (FAR, FRR, TAR, EER, expected and measured FPIR at the
gallery size N), the "set at target" rules, and the thresholds stored for the model (read and saved through
the one route, ``faceapp.services.thresholds.save_thresholds``, with the calibration source). Qt-free.

Every number comes from ``faceapp.services.thresholds``, i.e. ``faceapp.evaluation.metrics``: the same
code and, for a pairs protocol, the same scores as ``faceapp eval``.

The Qt view (``faceapp.gui.pages.thresholds.ThresholdsPage``) draws the curves and binds the sliders;
scoring runs through ``start_job`` (the view's job panel: progress and cancel) and quick reads and saves
through ``run`` (``AppContext.run``); both are ``run_now`` in tests.

Events (``faceapp.app.events.Event``): ``scored(scores, curves, n)``; ``point_changed(point)`` (the verify
threshold or N moved; ``point`` is None before scoring); ``identify_changed(value)``; ``stored_changed(
thresholds)`` (read or saved); ``thresholds_saved(record)``; ``message(level, text)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from faceapp.app.events import Event, run_now
from faceapp.app.identities import Runner
from faceapp.core.errors import DatasetError
from faceapp.core.progress import CancelToken, Job
from faceapp.services import thresholds as T

STANDARD_FARS = T.STANDARD_FARS        # the targets offered by "Set at FAR"

def score_job(kind: str, embedder: Any, store: Any, options: dict[str, Any], cancel: CancelToken) -> Job[tuple]:
    """Scores of the chosen source for the active model, their curves and the gallery size N."""
    if embedder is None:
        raise DatasetError("no embedding model is loaded: thresholds belong to a model")
    if kind == "gallery":
        if store is None:
            raise DatasetError("no database is open: the gallery source needs the enrolled templates")
        scores = yield from T.gallery_scores(store, embedder.model_id, embedder.dim, cancel=cancel)
    elif kind == "folder":
        if not options.get("folder"):
            raise DatasetError("choose a labelled folder (one sub-folder of images per identity)")
        scores = yield from T.folder_scores(embedder, options["folder"], identities=options.get("identities", ""),
                                            max_per_identity=options.get("max_per_identity", 0), cancel=cancel)
    else:
        if not options.get("pairs"):
            raise DatasetError("choose the pairs file (LFW pairs.txt) or the CFP folder")
        scores = yield from T.protocol_scores(embedder, options["format"], options["pairs"], options.get("root") or None,
                                              cfp_protocol=options.get("cfp_protocol", "FF"),
                                              folds=options.get("folds") or None,
                                              failure_policy=options.get("failure_policy", "wrong"), cancel=cancel)
    curves = T.compute_curves(scores)
    n = T.searchable_identities(store, embedder.model_id) if store is not None else 0
    return scores, curves, n or scores.search_size or 1


def stored_thresholds(session: Any) -> Any:
    """The active model's thresholds as decisions use them: the session's gallery (store, else model card,
    else defaults); without a database, the card's or the defaults."""
    if session.gallery is not None:
        return session.gallery.thresholds()
    from faceapp.matching.thresholds import resolve_thresholds

    return resolve_thresholds(None, session.embedder.card)


def smallest_measurable_far(n_impostor: int) -> float:
    """1/N: one accepted impostor pair out of N is the smallest FAR the pairs can show (1.0 without pairs)."""
    return 1.0 / n_impostor if n_impostor > 0 else 1.0


def unmeasurable_far_text(target: float, n_impostor: int) -> str:
    """The plain sentence for a target FAR below 1/N ("" when the pairs can measure it)."""
    floor = smallest_measurable_far(n_impostor)
    if target >= floor:
        return ""
    need = int(np.ceil(1.0 / target))
    return (f"A FAR of {target:g} cannot be measured with {n_impostor:,} impostor pairs: the smallest measurable FAR "
            f"is 1/{n_impostor:,} = {floor:.2g}. The threshold is set where none of these impostors is accepted; its "
            f"true FAR is unknown. Score a source with at least {need:,} impostor pairs ({3 * need:,} to bound it "
            "with 95 % confidence).")


def clamp_marker(x: float, y: float, xs: np.ndarray, ys: np.ndarray) -> tuple[float, float, bool] | None:
    """A threshold marker kept on a plotted curve's range (log axes cannot show 0): (x, y, clamped), or None
    when nothing is plotted."""
    if xs.size == 0 or ys.size == 0:
        return None
    cx = float(np.clip(x, xs.min(), xs.max()))
    cy = float(np.clip(y, ys.min(), ys.max()))
    return cx, cy, (cx != x or cy != y)


def fmt_rate(value: float | None) -> str:
    """A rate for the read-outs: percent with enough digits for 1e-4."""
    if value is None:
        return "n/a"
    if value == 0:
        return "0"
    return f"{value * 100:.3g}%" if value >= 1e-4 else f"{value:.2e}"


class ThresholdsModel:
    """State and use cases of the Thresholds tab (see the module docstring)."""

    def __init__(self, session: Any, run: Runner = run_now, start_job: Runner = run_now) -> None:
        self.session = session              # .store / .embedder / .gallery (the active model's)
        self.run = run
        self.start_job = start_job
        self.scores: T.ScoreSet | None = None
        self.curves: T.Curves | None = None
        self.point: T.OperatingPoint | None = None
        self.gallery_size = 1               # N, for the expected false-positive identification rate
        self.verify = 0.5                   # the verify threshold being studied
        self.identify = 0.5                 # the identify threshold to save
        self.target: dict[str, Any] = {}    # what "Set at ..." chose, recorded with the saved thresholds
        self._target_verify = float("nan")  # the verify threshold "Set at FAR" chose
        for name in ("scored", "point_changed", "identify_changed", "stored_changed", "thresholds_saved", "message"):
            setattr(self, name, Event(name))

    # -- scoring ----------------------------------------------------------------------------------
    def compute(self, kind: str, options: dict[str, Any]) -> None:
        """Score the chosen source ("gallery", "folder", "pairs") with the active model (a job)."""
        self.start_job(score_job, kind, self.session.embedder, self.session.store, options,
                       on_result=self._scored, context="Scoring")

    def _scored(self, outcome: tuple) -> None:
        scores, curves, n = outcome
        self.scores, self.curves = scores, curves
        self.target = {}
        self.gallery_size = int(n)
        self.scored.emit(scores, curves, int(n))
        self.set_verify(curves.eer_threshold if np.isfinite(curves.eer_threshold) else 0.5)

    def summary_text(self) -> str:
        scores, curves = self.scores, self.curves
        if scores is None or curves is None:
            return ""
        text = f"{scores.describe()}\nmodel {scores.model_id}; EER {curves.eer * 100:.2f}%, AUC {curves.auc:.4f}"
        if scores.report:
            text += f"; {len(scores.report['folds'])}-fold accuracy {scores.report['accuracy'] * 100:.2f}%"
        return text

    def stale(self) -> bool:
        """Whether the scores belong to another model than the active one."""
        embedder = self.session.embedder
        return self.scores is not None and embedder is not None and self.scores.model_id != embedder.model_id

    # -- the operating point ----------------------------------------------------------------------
    def set_verify(self, value: float) -> None:
        """Move the verify threshold; the operating point follows."""
        self.verify = float(value)
        self._update_point()

    def set_gallery_size(self, n: int) -> None:
        self.gallery_size = int(n)
        self._update_point()

    def set_identify(self, value: float) -> None:
        self.identify = float(value)

    def _update_point(self) -> None:
        if self.scores is not None and self.curves is not None:
            self.point = T.operating_point(self.scores, self.verify, self.gallery_size)
        self.point_changed.emit(self.point)

    def readouts(self) -> dict[str, str]:
        """The read-out texts of the operating point (far, frr, tar, eer, fpir, fpir_emp); {} before scoring."""
        point, scores, curves = self.point, self.scores, self.curves
        if point is None or scores is None or curves is None:
            return {}
        far = f"{fmt_rate(point.far)}  ({round(point.far * scores.n_impostor)} of {scores.n_impostor:,})"
        if point.far == 0:
            far = f"< {fmt_rate(smallest_measurable_far(scores.n_impostor))}  (0 of {scores.n_impostor:,}: below 1/N)"
        return {
            "far": far,
            "frr": f"{fmt_rate(point.frr)}  ({round(point.frr * scores.n_genuine)} of {scores.n_genuine:,})",
            "tar": fmt_rate(point.tar),
            "eer": f"{fmt_rate(curves.eer)}  (t = {curves.eer_threshold:.4f})",
            "fpir": f"{fmt_rate(point.fpir_expected)}  (N = {point.gallery_size:,})",
            "fpir_emp": (f"{fmt_rate(point.fpir_empirical)}  (N = {point.search_size:,})"
                         if point.fpir_empirical is not None else "n/a for pairs protocols"),
        }

    def far_note(self) -> str:
        """What the FAR read-out cannot say: the target (or the slider's FAR of 0) is below what the
        impostor pairs can measure."""
        scores, point = self.scores, self.point
        if scores is None or point is None:
            return ""
        target = self.target.get("verify")
        if target is not None and self.verify == self._target_verify:      # still where the target put it
            text = unmeasurable_far_text(target, scores.n_impostor)
            if text:
                return text
        if point.far == 0:
            return (f"No impostor of {scores.n_impostor:,} pairs reaches this threshold: its FAR is below "
                    f"1/{scores.n_impostor:,} = {smallest_measurable_far(scores.n_impostor):.2g}, and these pairs "
                    "cannot say how far below.")
        return ""

    def markers(self) -> dict[str, Any]:
        """Where the threshold sits on the ROC and DET plots (log axes), kept on the plotted range, with notes:
        {"roc": (x, y) | None, "det": (x, y) | None, "roc_note": str, "det_note": str}."""
        out: dict[str, Any] = {"roc": None, "det": None, "roc_note": "", "det_note": ""}
        point, curves, scores = self.point, self.curves, self.scores
        if point is None or curves is None or scores is None:
            return out
        far, tar = curves.roc.far, curves.roc.tar
        pos = far > 0
        roc = clamp_marker(point.far, point.tar, far[pos], tar[pos])
        if roc is not None:
            out["roc"] = roc[:2]
            if roc[2]:
                out["roc_note"] = (f"Threshold marker at the plot's edge: its FAR ({fmt_rate(point.far)}) is below the "
                                   "plotted range.")
        det = (far > 0) & (tar < 1)
        marker = clamp_marker(point.far, point.frr, far[det], 1.0 - tar[det])
        if marker is None:
            out["det_note"] = (f"No DET curve: no threshold gives both a FAR and an FRR above zero on this source "
                               f"({scores.n_genuine:,} genuine / {scores.n_impostor:,} impostor pairs), so there is "
                               "nothing to draw on log axes. The scores separate completely here; score a larger or "
                               "harder source to see the trade-off.")
        else:
            out["det"] = marker[:2]
            if marker[2]:
                out["det_note"] = (f"Threshold marker at the plot's edge: FAR {fmt_rate(point.far)}, FRR "
                                   f"{fmt_rate(point.frr)} lie outside the plotted range (0 has no place on a log axis).")
        return out

    def set_at_target_far(self, far: float) -> None:
        """Verify threshold = the lowest threshold whose FAR is at most ``far``; a target below 1/N (the
        impostor pairs cannot measure it) says so."""
        if self.scores is None:
            return
        self.target["verify"] = far
        self._target_verify = float(T.threshold_for_far(self.scores, far))
        self.set_verify(self._target_verify)
        text = unmeasurable_far_text(far, self.scores.n_impostor)
        if text:
            self.message.emit("warning", text)

    def set_identify_at_target(self, fpir: float) -> None:
        """Identify threshold for the target FPIR at gallery size N (measured when the source allows)."""
        if self.scores is None:
            return
        value, how = T.threshold_for_fpir(self.scores, fpir, self.gallery_size)
        self.identify = float(value)
        self.identify_changed.emit(self.identify)
        self.target["identify"] = (fpir, how)
        self.message.emit("info", f"Identify threshold {value:.4f} for FPIR {fpir:g} at N = {self.gallery_size}: {how}.")

    # -- stored thresholds ------------------------------------------------------------------------
    def save_source(self) -> str:
        """The calibration source recorded with saved thresholds."""
        parts = [f"thresholds tab: {self.scores.describe() if self.scores else 'manual'}"]
        if "verify" in self.target:
            parts.append(f"verify at FAR {self.target['verify']:g}")
        if "identify" in self.target:
            fpir, how = self.target["identify"]
            parts.append(f"identify at FPIR {fpir:g} ({how})")
        return "; ".join(parts)

    def save(self) -> None:
        """Store the verify and identify thresholds for the active model (the one route, exact values)."""
        session = self.session
        if session.gallery is None:
            self.message.emit("warning", "No database or model is loaded: thresholds cannot be saved.")
            return
        if self.stale():
            self.message.emit("warning", "These scores belong to another model: compute them again for the "
                                         "active model.")
            return
        self.run(session.gallery.save_thresholds, verify=self.verify, identify=self.identify,   # the one route,
                 target_far=self.target.get("verify"), source=self.save_source(),              # with the operator
                 on_result=self._saved, context="Saving thresholds")

    def _saved(self, record: Any) -> None:
        self.stored_changed.emit(record)
        self.message.emit("info", f"Thresholds saved for {record.model_id}: verify {record.verify:.4f}, identify "
                                  f"{record.identify:.4f}"
                                  + (f" (target FAR {record.target_far:g})" if record.target_far else "") + ".")
        self.thresholds_saved.emit(record)

    def load_stored(self) -> None:
        """Read the active model's thresholds (store, else model card, else defaults)."""
        if self.session.embedder is None:
            return
        self.run(stored_thresholds, self.session, on_result=self._stored,
                 context="Reading the thresholds")

    def _stored(self, thresholds: Any) -> None:
        self.stored_changed.emit(thresholds)

    def apply_stored(self, thresholds: Any) -> None:
        """Stored thresholds shown: they become the identify value (unless a target chose it) and, before
        any scoring, the verify value."""
        if "identify" not in self.target:
            self.identify = float(thresholds.identify)
            self.identify_changed.emit(self.identify)
        if self.scores is None:
            self.set_verify(thresholds.verify)

    @staticmethod
    def stored_text(thresholds: Any) -> str:
        source = thresholds.source if thresholds.source.startswith(("store", "model-card", "default")) \
            else f"store:{thresholds.source}"
        date = getattr(thresholds, "calibrated_at", None)
        far = getattr(thresholds, "target_far", None)
        return (f"stored: verify {thresholds.verify:.4f}, identify {thresholds.identify:.4f}"
                + (f", target FAR {far:g}" if far else "")
                + (f", {date:%Y-%m-%d %H:%M}" if date else "") + f"\nsource: {source}")
