"""The gallery as points: every stored template of one model with its identity and a thumbnail of its crop.

Feeds the Embeddings tab (projection, hover thumbnails, identity heat map). Reads the store only; one
read of the model's templates, then two small reads per identity for the thumbnails (crops are PNGs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from faceapp.core.errors import DatasetError
from faceapp.core.progress import CancelToken, Job, Progress

THUMB_SIZE = 64


class EmptyGalleryError(DatasetError):
    """The model has no template in the store (nobody enrolled yet, or not re-embedded for this model)."""


@dataclass
class GalleryPoints:
    """Templates of one model: rows of ``embeddings`` with their template and identity ids."""

    model_id: str
    embeddings: np.ndarray                   # (N, D) float32, unit rows
    template_ids: np.ndarray                 # (N,) int64
    identity_ids: np.ndarray                 # (N,) int64
    names: dict[int, str]                    # identity id -> name
    thumbnails: list[np.ndarray | None] = field(default_factory=list)   # per row, THUMB_SIZE^2 BGR or None
    identities_without_templates: int = 0    # identities of the store the model cannot show

    def __len__(self) -> int:
        return int(self.template_ids.size)

    @property
    def identity_count(self) -> int:
        return int(np.unique(self.identity_ids).size)

    def name_of(self, row: int) -> str:
        return self.names.get(int(self.identity_ids[row]), f"#{int(self.identity_ids[row])}")


def load_gallery_points(store: Any, model_id: str, dim: int, *, thumbnails: bool = True,
                        thumb_size: int = THUMB_SIZE, cancel: CancelToken | None = None) -> Job[GalleryPoints]:
    """Read every template of ``model_id`` (dimension ``dim``) and, optionally, a thumbnail of each crop."""
    from faceapp.matching.index import normalize_rows

    yield Progress("gallery", 0, None, message=f"reading the templates of {model_id}")
    rows = store.templates.gallery_rows(model_id, dim)
    if rows.template_ids.size == 0:
        raise EmptyGalleryError(f"the gallery has no template of model {model_id}: enrol people, or activate the "
                           "model (which re-embeds the stored crops) first")
    points = GalleryPoints(model_id=model_id, embeddings=normalize_rows(rows.embeddings),
                           template_ids=rows.template_ids, identity_ids=rows.identity_ids, names=dict(rows.names),
                           thumbnails=[None] * int(rows.template_ids.size))
    points.identities_without_templates = max(0, store.identities.count() - points.identity_count)
    if not thumbnails:
        return points
    row_of = {int(t): i for i, t in enumerate(rows.template_ids)}
    ids = [int(i) for i in np.unique(rows.identity_ids)]
    for done, identity_id in enumerate(ids, 1):
        if cancel is not None:
            cancel.raise_if_cancelled("loading the gallery")
        crops = {c.id: c for c in store.templates.crops(identity_id)}
        for template in store.templates.for_identity(identity_id, model_id):
            crop = crops.get(template.crop_id) if template.crop_id is not None else None
            row = row_of.get(int(template.id))
            if crop is not None and row is not None:
                points.thumbnails[row] = cv2.resize(crop.image(), (thumb_size, thumb_size),
                                                    interpolation=cv2.INTER_AREA)
        yield Progress("gallery", done, len(ids), message="thumbnails")
    return points
