"""The Embeddings view's model: the active model's gallery as points (every stored template, with its
identity, name and thumbnail), their 2-D projection by the chosen method, the identity-by-identity mean
cosine similarity, and the loss-geometry study (a tiny 2-D/3-D network trained with each chosen loss).
Qt-free.

The Qt view (``faceapp.gui.pages.embeddings.EmbeddingsPage``) draws the scatter plot, the heat map and the
geometry panels; loading and projecting run through ``start_job`` and the geometry training through
``start_geometry`` (the view's job panels; ``run_now`` in tests).

Events (``faceapp.app.events.Event``): ``loaded()`` (points, coordinates and similarity changed: redraw
all), ``projected()`` (new coordinates), ``info_changed(text)``, ``load_failed(error)``,
``geometry_done(result)``, ``geometry_failed(error)``, ``error(exception, context)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from faceapp.app.events import Event, run_now
from faceapp.app.identities import Runner
from faceapp.core.errors import DatasetError
from faceapp.core.progress import CancelToken, Job
from faceapp.services.gallery_points import EmptyGalleryError


@dataclass(frozen=True)
class EmptyGallery:
    """What ``gallery_job`` returns when the model has no template: an empty state, not a failure."""

    model_id: str
    identities: int                 # identities in the store (enrolled, but maybe not for this model)

    def text(self) -> str:
        """The empty state's sentence: what is missing and where to go."""
        if self.identities == 0:
            return ("No identities enrolled yet - enrol people on the Enroll page (Ctrl+2); each enrolled face "
                    "appears here as a point.")
        return (f"{self.identities} identit{'y is' if self.identities == 1 else 'ies are'} enrolled, but none has a "
                f"template of model {self.model_id}: activate it on the Trainer page (it re-embeds the stored crops) "
                "or enrol people again.")


def gallery_job(store: Any, embedder: Any, method: str, cancel: CancelToken) -> Job[tuple]:
    """The gallery's points of the active model, their projection and the identity similarity matrix."""
    from faceapp.services.gallery_points import load_gallery_points
    from faceapp.services.projection import identity_similarity, project

    if store is None or embedder is None:
        raise DatasetError("no database or no embedding model is loaded")
    try:
        points = yield from load_gallery_points(store, embedder.model_id, embedder.dim, cancel=cancel)
    except EmptyGalleryError:
        return EmptyGallery(embedder.model_id, store.identities.count())
    ids, matrix = identity_similarity(points.embeddings, points.identity_ids)
    coords = project(points.embeddings, method)
    return points, coords, ids, matrix


def geometry_choices() -> tuple[Sequence[str], dict[str, str], Any]:
    """(the losses the geometry view trains, their titles, the default faces folder)."""
    from faceapp.services.geometry import GEOMETRY_LOSSES, LOSS_TITLES, default_geometry_folder

    return GEOMETRY_LOSSES, LOSS_TITLES, default_geometry_folder()


def projection_methods() -> dict[str, str]:
    """The projection methods available here (key -> title): PCA always, t-SNE, UMAP when installed."""
    from faceapp.services.projection import available_methods

    return available_methods()


class EmbeddingsModel:
    """State and use cases of the Embeddings tab (see the module docstring)."""

    def __init__(self, session: Any, *, start_job: Runner = run_now, start_geometry: Runner = run_now) -> None:
        self.session = session              # .store / .embedder
        self.start_job, self.start_geometry = start_job, start_geometry
        self.points: Any = None
        self.coords: np.ndarray | None = None
        self.similarity: tuple[np.ndarray, np.ndarray] | None = None
        self.geometry: Any = None
        self.empty: EmptyGallery | None = None   # the last read found no template: the empty state
        self.stale = True                   # the gallery changed since it was read
        self.coords_method = ""             # the method the coordinates came from (its title)
        self._running_method = ""
        self.heat_values: np.ndarray = np.zeros((0, 0))   # the heat map as drawn (identity order)
        self.heat_order: list[int] = []
        for name in ("loaded", "projected", "info_changed", "load_failed", "geometry_done", "geometry_failed",
                     "error"):
            setattr(self, name, Event(name))

    # -- the gallery ------------------------------------------------------------------------------
    def refresh(self, method: str, title: str) -> bool:
        """Read the active model's gallery, project it with ``method`` and compute the similarity matrix."""
        session = self.session
        if session.store is None or session.embedder is None:
            self.info_changed.emit("No database or model is loaded.")
            return False
        self.stale = False
        self._running_method = title
        self.start_job(gallery_job, session.store, session.embedder, method, on_result=self._loaded,
                       on_error=self._load_failed, context="Loading the gallery")
        return True

    def needs_refresh(self) -> bool:
        return self.points is None or self.stale

    def empty_text(self) -> str:
        """The empty state's sentence ("" when there are points or nothing was read yet)."""
        return self.empty.text() if self.empty is not None and self.points is None else ""

    def reproject(self, method: str, title: str) -> None:
        """Project the loaded gallery with ``method`` (the view reads the gallery first when needed)."""
        from faceapp.services.projection import project

        self._running_method = title
        self.start_job(project, self.points.embeddings, method, on_result=self._projected, context=f"{title} projection")

    def catch_up_needed(self, outcome: str, title: str) -> str:
        """After a job: "refresh" when the gallery changed while it ran, "reproject" when another method was
        chosen (not after a failed projection: that would retry forever), else ""."""
        if self.stale:
            return "refresh"
        if outcome == "done" and self.points is not None and self.coords_method != title:
            return "reproject"
        return ""

    def _projected(self, coords: np.ndarray) -> None:
        self.coords, self.coords_method = coords, self._running_method
        self.info_changed.emit(self.describe())
        self.projected.emit()

    def _load_failed(self, error: BaseException) -> None:
        self.info_changed.emit(str(error))
        self.points = self.coords = self.similarity = None
        self.load_failed.emit(error)
        if not isinstance(error, DatasetError):
            self.error.emit(error, "Loading the gallery")

    def _loaded(self, outcome: tuple | EmptyGallery) -> None:
        if isinstance(outcome, EmptyGallery):
            self.points = self.coords = self.similarity = None
            self.empty = outcome
            self.coords_method = self._running_method
            self.info_changed.emit(outcome.text())
            self.loaded.emit()
            return
        self.empty = None
        self.points, self.coords, ids, matrix = outcome
        self.coords_method = self._running_method
        self.similarity = (ids, matrix)
        self.info_changed.emit(self.describe())
        self.loaded.emit()

    def gallery_changed(self) -> None:
        self.stale = True

    def describe(self) -> str:
        points = self.points
        if points is None:
            return ""
        text = (f"{len(points)} templates of {points.identity_count} identities, model {points.model_id}; "
                f"{self.coords_method}. Hover a point for its face, click to open the identity.")
        if points.identities_without_templates:
            text += (f" {points.identities_without_templates} identities have no template of this model "
                     "(activate it from the Trainer to re-embed them).")
        return text

    def identity_order(self) -> list[int]:
        """Identity ids in display order (sorted by name)."""
        if self.points is None:
            return []
        ids = {int(i) for i in self.points.identity_ids}
        return sorted(ids, key=lambda i: (self.points.names.get(i, ""), i))

    def identity_at(self, row: int) -> int:
        return int(self.points.identity_ids[row])

    # -- the heat map -----------------------------------------------------------------------------
    def heat_map(self) -> tuple[list[int], np.ndarray, float, float] | None:
        """(identity order, the similarity matrix in that order, low, high levels), or None before loading."""
        if self.similarity is None or self.points is None:
            return None
        ids, matrix = self.similarity
        order = self.identity_order()
        index = {int(i): k for k, i in enumerate(ids)}
        perm = np.asarray([index[i] for i in order])
        shown = matrix[np.ix_(perm, perm)]
        finite = shown[np.isfinite(shown)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if high - low < 1e-6:
            low, high = low - 0.01, high + 0.01
        self.heat_values, self.heat_order = shown, order
        return order, shown, low, high

    def names(self, order: Sequence[int]) -> list[str]:
        return [self.points.names.get(i, f"#{i}") for i in order]

    def cell_text(self, i: int, j: int) -> str:
        """Read-out of heat-map cell (row i, column j)."""
        names = self.names(self.heat_order)
        value = self.heat_values[i, j]
        shown = "n/a (one template)" if not np.isfinite(value) else f"{value:.3f}"
        return f"{names[i]} vs {names[j]}: mean cosine {shown}"

    # -- loss geometry ----------------------------------------------------------------------------
    @staticmethod
    def geometry_config(folder: str, identities: int, dim: int, steps: int, losses: Sequence[str]) -> Any:
        from faceapp.services.geometry import GeometryConfig

        return GeometryConfig(data=folder, identities=identities, dim=dim, steps=steps, losses=tuple(losses))

    def train_geometry(self, config: Any) -> None:
        """Train the toy network with each chosen loss: ``geometry_done`` or ``geometry_failed``."""
        from faceapp.services.geometry import train_geometry

        self.start_geometry(train_geometry, config, on_result=self._geometry_done, on_error=self._geometry_failed,
                            context="Training the geometry view")

    def _geometry_done(self, result: Any) -> None:
        self.geometry = result
        self.geometry_done.emit(result)

    def _geometry_failed(self, error: BaseException) -> None:
        self.geometry_failed.emit(error)
        self.error.emit(error, "Loss geometry")

    @property
    def sphere(self) -> bool:
        return self.geometry is not None and self.geometry.dim == 3
