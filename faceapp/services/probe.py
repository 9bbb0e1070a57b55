"""A probe for verify/identify: read an image, find its main face, align and embed it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from faceapp.core.errors import NoFaceError
from faceapp.core.types import AlignedFace
from faceapp.services.gallery import EmbedderLike

if TYPE_CHECKING:
    from faceapp.vision.pipeline import FacePipeline


@dataclass(frozen=True)
class Probe:
    """The embedded main face of one image."""

    embedding: np.ndarray       # (dim,) float32, unit
    aligned: AlignedFace
    faces: int                  # faces found in the image (the main one is used when several)
    source: str


def main_face(pipeline: "FacePipeline", image: np.ndarray | str | Path, *,
              source: str | None = None) -> tuple[AlignedFace, int]:
    """The aligned main face (largest, ties -> most central) of ``image`` and how many faces it shows;
    NoFaceError naming the source when there is none."""
    from faceapp.vision.pipeline import primary_face_index

    label = source or (str(image) if isinstance(image, (str, Path)) else "image")
    if isinstance(image, (str, Path)):
        from faceapp.capture.images import read_image

        image = read_image(image)
    faces = pipeline.process(image)
    main = primary_face_index([f.face for f in faces], image.shape)
    if main is None:
        raise NoFaceError(f"no face found in {label}", path=label)
    aligned = faces[main]
    aligned.source = label
    return aligned, len(faces)


def embed_probe(pipeline: "FacePipeline", embedder: EmbedderLike, image: np.ndarray | str | Path, *,
                source: str | None = None) -> Probe:
    """``main_face`` embedded: the probe of a verify or identify."""
    aligned, count = main_face(pipeline, image, source=source)
    embedding = embedder.embed([aligned.image])[0]
    return Probe(embedding=embedding, aligned=aligned, faces=count, source=aligned.source)
