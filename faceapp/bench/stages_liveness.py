"""Bench stages of liveness: the fused passive MiniFASNet pair on one face at batch 1, and the challenge's own
per-frame cost on top of the landmarker (blendshapes and pose are already in every landmarker result).

Target (issue 14, this CPU): passive scoring <= 5 ms per face at batch 1.
"""

from __future__ import annotations

import itertools

from faceapp.bench.framework import BenchContext, StageSkipped, Target, Timed, bench_stage
from faceapp.bench.stages_pipeline import _cycle, _pipeline, photos, video_frames
from faceapp.core.errors import ModelAssetError

PASSIVE_TARGET = Target(max_ms=5.0)


@bench_stage("liveness-passive", summary="PassiveScorer.score: MiniFASNetV2 (2.7) + V1SE (4.0) crops, fused, batch 1",
             order=60)
def stage_liveness_passive(ctx: BenchContext) -> Timed:
    return _passive_stage(ctx, engine=None)


@bench_stage("liveness-passive-torch", summary="PassiveScorer.score, batch 1, eager torch engine (the fallback)",
             order=60.5)
def stage_liveness_passive_torch(ctx: BenchContext) -> Timed:
    return _passive_stage(ctx, engine="torch")


def _passive_stage(ctx: BenchContext, engine: str | None) -> Timed:
    """The fused passive score of one face per call, on ``engine`` (None: the default, onnxruntime on the CPU)."""
    from faceapp.liveness.passive import PassiveScorer

    try:
        scorer = PassiveScorer(engine=engine)
    except ModelAssetError as error:
        raise StageSkipped(str(error)) from error
    pipe = _pipeline(ctx, purpose="liveness")
    items = [(image, faces[0].box) for image in photos(ctx) if (faces := pipe.detect(image))]
    cycle = _cycle(items)

    def call() -> None:
        image, box = next(cycle)
        scorer.score(image, box)

    return Timed(call, unit="face", target=PASSIVE_TARGET,
                 note=f"two 80x80 crops and two forward passes per face ({scorer.engine})")


@bench_stage("liveness-challenge", summary="Challenge.update on landmarker faces (blink, turn, smile signals)",
             order=61)
def stage_liveness_challenge(ctx: BenchContext) -> Timed:
    from faceapp.liveness.challenge import Challenge, frame_brightness, random_steps
    import random

    pipe = _pipeline(ctx, "video", 1, purpose="liveness")
    clock = itertools.count(0, 33)
    faces = [(pipe.detect(frame, next(clock)), frame) for frame in video_frames(ctx)]
    cycle, times = _cycle(faces), itertools.count(0, 33)
    challenge = Challenge(random_steps(random.Random(0)), time_limit_ms=float("inf"))

    def call() -> None:
        found, frame = next(cycle)
        challenge.update(found, next(times), brightness=frame_brightness(frame))

    return Timed(call, unit="frame", note="added to the landmarker's own per-frame time")
