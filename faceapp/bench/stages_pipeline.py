"""Bench stages of the face pipeline: decode, detect (IMAGE and VIDEO mode), align, embed, whole pipeline.

Inputs are real photos: the first photos of ``$FACEAPP_DATASETS/celeba_subset`` (or ``--images DIR``)
in which a face is found, and a 640 x 480 MJPG video with one face built from one of them at run time.
Targets (issue 2, two CPU cores): detect + landmarks <= 8 ms, compact-backbone embed <= 5 ms per face
at batch 1, whole pipeline >= 30 frames/s.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from faceapp.bench.framework import BenchContext, StageSkipped, Target, Timed, bench_stage
from faceapp.core.errors import DatasetError
from faceapp.core.paths import datasets_dir

N_PHOTOS = 32
VIDEO_FRAMES = 90
DETECT_TARGET = Target(max_ms=8.0)
EMBED_TARGET = Target(max_ms=5.0)
PIPELINE_TARGET = Target(min_per_s=30.0)


def images_dir(ctx: BenchContext) -> Path:
    """Folder of the benchmark photos: ``ctx.images_dir`` when set, else the CelebA subset."""
    folder = ctx.options.get("images_dir") or datasets_dir() / "celeba_subset"
    if not Path(folder).is_dir():
        raise DatasetError(f"{folder}: benchmark photos not found; pass --images DIR (a folder of face photos) "
                           "or set FACEAPP_DATASETS")
    return Path(folder)


def _pipeline(ctx: BenchContext, mode: str = "image", num_faces: int = 4, purpose: str = "") -> Any:
    """A FacePipeline shared by the stages asking for the same mode, face count and purpose."""
    from faceapp.vision.pipeline import FacePipeline

    def build() -> Any:
        return FacePipeline(mode, num_faces=num_faces, model_dir=ctx.options.get("mediapipe_dir"))

    return ctx.shared(f"pipeline:{mode}:{num_faces}:{purpose}", build)


def photo_paths(ctx: BenchContext) -> list[Path]:
    """Up to N_PHOTOS photos (sorted by path) in which the image pipeline finds a face."""
    from faceapp.capture.images import list_images, read_image

    def build() -> list[Path]:
        pipe = _pipeline(ctx)
        chosen = []
        for path in list_images([images_dir(ctx)])[: N_PHOTOS * 4]:
            if pipe.detect(read_image(path)):
                chosen.append(path)
            if len(chosen) == N_PHOTOS:
                break
        if not chosen:
            raise DatasetError(f"{images_dir(ctx)}: no photo with a detectable face for the benchmark")
        return chosen

    return ctx.shared("photo_paths", build)


def photos(ctx: BenchContext) -> list[np.ndarray]:
    from faceapp.capture.images import read_image

    return ctx.shared("photos", lambda: [read_image(p) for p in photo_paths(ctx)])


def crops(ctx: BenchContext) -> list[np.ndarray]:
    """Aligned 112 x 112 crops of the main face of each photo."""
    pipe = _pipeline(ctx)
    return ctx.shared("crops", lambda: [pipe.process(image)[0].image for image in photos(ctx)])


def video_path(ctx: BenchContext) -> Path:
    """A 640 x 480, 30 fps MJPG video of one face drifting slowly (3 s)."""
    from faceapp.capture.synthetic import face_video_frames, write_video

    def build() -> Path:
        frames = face_video_frames(photos(ctx)[0], n_frames=VIDEO_FRAMES, size=(640, 480))
        return write_video(frames, ctx.work_dir / "one_face_640x480.avi", fps=30.0, fourcc="MJPG")

    return ctx.shared("video", build)


def video_frames(ctx: BenchContext) -> list[np.ndarray]:
    from faceapp.capture.sources import VideoFileSource

    def build() -> list[np.ndarray]:
        with VideoFileSource(video_path(ctx)) as source:
            return [frame.image for frame in source]

    return ctx.shared("video_frames", build)


def workstation(ctx: BenchContext, device: str = "cpu", db: Path | None = None) -> Any:
    """The bench's Workstation, built as the CLI and the GUI build theirs (``faceapp.app.open_workstation``)
    from --model, --mediapipe-dir and the environment; ``db`` is a throw-away gallery in the work folder."""
    from faceapp.app import WorkstationOptions, open_workstation

    def build() -> Any:
        return open_workstation(WorkstationOptions(
            db=str(db) if db is not None else None, model=ctx.options.get("model_dir"), device=device,
            mediapipe_dir=ctx.options.get("mediapipe_dir"), operator="bench", allow_download=True))

    return ctx.shared(f"workstation:{device}:{db}", build)


def embedder(ctx: BenchContext, device: str) -> Any:
    """The active embedding model (``--model`` / $FACEAPP_EMBED_MODEL / models/default / untrained)."""
    return workstation(ctx, device).embedder


def _cycle(items: list[Any]) -> Iterator[Any]:
    return itertools.cycle(items)


# --------------------------------------------------------------------------------------------- stages
@bench_stage("decode", summary="read_image of a CelebA JPEG (decode + checks)", order=10)
def stage_decode(ctx: BenchContext) -> Timed:
    from faceapp.capture.images import read_image

    paths = _cycle(photo_paths(ctx))
    shape = photos(ctx)[0].shape
    return Timed(lambda: read_image(next(paths)), unit="image", note=f"photos about {shape[1]}x{shape[0]}")


@bench_stage("detect-image", summary="FacePipeline.detect, IMAGE mode (landmarks, pose, quality)", order=20)
def stage_detect_image(ctx: BenchContext) -> Timed:
    pipe = _pipeline(ctx)
    images = _cycle(photos(ctx))
    return Timed(lambda: pipe.detect(next(images)), unit="image", target=DETECT_TARGET,
                 note=f"detector {pipe.detector.value}, num_faces 4")


def _video_detect(ctx: BenchContext, num_faces: int) -> Timed:
    pipe = _pipeline(ctx, "video", num_faces)
    frames = _cycle(video_frames(ctx))
    clock = itertools.count(0, 33)
    return Timed(lambda: pipe.detect(next(frames), next(clock)), unit="frame", target=DETECT_TARGET,
                 note=f"640x480 frames, num_faces {num_faces}")


@bench_stage("detect-video", summary="FacePipeline.detect, VIDEO mode, num_faces=4 (the default)", order=21)
def stage_detect_video(ctx: BenchContext) -> Timed:
    return _video_detect(ctx, 4)


@bench_stage("detect-video-1", summary="FacePipeline.detect, VIDEO mode, num_faces=1 (tracking)", order=22)
def stage_detect_video_one(ctx: BenchContext) -> Timed:
    return _video_detect(ctx, 1)


@bench_stage("align", summary="similarity fit + warpAffine to 112x112", order=30)
def stage_align(ctx: BenchContext) -> Timed:
    from faceapp.vision.align import align_face

    pipe = _pipeline(ctx)
    pairs = _cycle([(image, pipe.detect(image)[0].five_points) for image in photos(ctx)])

    def call() -> None:
        image, points = next(pairs)
        align_face(image, points)

    return Timed(call, unit="face")


def _engine_embedder(ctx: BenchContext, engine: str) -> Any:
    """The active model again, on ``engine`` (torch: the Embedder's fallback without onnxruntime; onnxruntime:
    the fp32 network where the folder's int8 one is the default)."""
    from faceapp.embedding.embedder import Embedder

    active = embedder(ctx, "cpu")
    return ctx.shared(f"embedder:{engine}", lambda: Embedder.load(active.folder, engine=engine) if active.folder
                      else Embedder.untrained(engine=engine))


def _embed_stage(ctx: BenchContext, device: str, batch: int, engine: str = "auto") -> Timed:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise StageSkipped("no CUDA device")
    model = _engine_embedder(ctx, engine) if engine != "auto" else embedder(ctx, device)
    available = crops(ctx)
    batch_crops = [available[i % len(available)] for i in range(batch)]
    state = "trained" if model.trained else "untrained"

    def call() -> None:
        model.embed(batch_crops, batch_size=batch)

    return Timed(call, items=batch, unit="face", target=EMBED_TARGET if batch == 1 else None,
                 note=f"{model.config.backbone} ({state}), dim {model.dim}, {model.engine}")


@bench_stage("embed-b1", summary="Embedder.embed, batch 1, CPU", order=40)
def stage_embed_b1(ctx: BenchContext) -> Timed:
    return _embed_stage(ctx, "cpu", 1)


@bench_stage("embed-b1-torch", summary="Embedder.embed, batch 1, CPU, eager torch engine (the fallback)", order=40.5)
def stage_embed_b1_torch(ctx: BenchContext) -> Timed:
    return _embed_stage(ctx, "cpu", 1, engine="torch")


@bench_stage("embed-b1-fp32", summary="Embedder.embed, batch 1, CPU, onnxruntime fp32 (beside a folder's int8 "
                                       "network)", order=40.6, default=False)
def stage_embed_b1_fp32(ctx: BenchContext) -> Timed:
    return _embed_stage(ctx, "cpu", 1, engine="onnxruntime")


@bench_stage("embed-b32", summary="Embedder.embed, batch 32, CPU", order=41)
def stage_embed_b32(ctx: BenchContext) -> Timed:
    return _embed_stage(ctx, "cpu", 32)


@bench_stage("embed-b1-cuda", summary="Embedder.embed, batch 1, CUDA", order=42)
def stage_embed_b1_cuda(ctx: BenchContext) -> Timed:
    return _embed_stage(ctx, "cuda", 1)


@bench_stage("embed-b32-cuda", summary="Embedder.embed, batch 32, CUDA", order=43)
def stage_embed_b32_cuda(ctx: BenchContext) -> Timed:
    return _embed_stage(ctx, "cuda", 32)


@bench_stage("pipeline-video", summary="whole pipeline per frame: video decode + detect + align + embed",
             order=50)
def stage_pipeline_video(ctx: BenchContext) -> Timed:
    from faceapp.capture.sources import VideoFileSource
    from faceapp.vision.pipeline import primary_face_index

    pipe = _pipeline(ctx, "video", 4, purpose="whole")
    model = embedder(ctx, "auto")
    source = ctx.shared("video_source", lambda: VideoFileSource(video_path(ctx), loop=True))
    frames = iter(source)

    def call() -> None:
        frame = next(frames)
        aligned = pipe.process(frame.image, frame.timestamp_ms)
        main = primary_face_index([a.face for a in aligned], frame.image.shape)
        if main is not None:
            model.embed([aligned[main].image], batch_size=1)

    return Timed(call, unit="frame", target=PIPELINE_TARGET,
                 note=f"640x480 MJPG, num_faces 4, {model.config.backbone} on {model.device}")
