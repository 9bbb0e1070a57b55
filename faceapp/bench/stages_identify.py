"""Bench stages of the gallery: exact identification at 1k-1M templates and enrolment throughput.

Identification uses synthetic random unit vectors (5 templates per identity, dimension of the active
model's default, 128) searched exactly by ``GalleryIndex`` (top-5 identities); the target is 100k
templates under 10 ms per query on this CPU. Enrolment runs real AT&T photos through the whole path
(read, detect, align, quality gate, embed with the active model, duplicate check, one transaction) into
a throw-away SQLite file; ``enroll-transaction`` times the transaction alone (5 crops + templates).
"""

from __future__ import annotations

import itertools
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.bench.framework import BenchContext, Target, Timed, bench_stage
from faceapp.core.errors import DatasetError
from faceapp.core.paths import datasets_dir
from faceapp.bench.gallery import SCALES, synthetic_index

DIM = 128
IDENTIFY_TARGET = Target(max_ms=10.0)     # at 100k templates
ENROL_IMAGES = 5


def _identify(ctx: BenchContext, stage: str) -> Timed:
    templates = SCALES[stage]
    index = ctx.shared(f"gallery-index:{templates}", lambda: synthetic_index(templates, DIM))
    probes = itertools.cycle(np.random.default_rng(1).standard_normal((64, DIM), dtype=np.float32))
    return Timed(call=lambda: index.top_identities(next(probes), 5), items=1, unit="query",
                 target=IDENTIFY_TARGET if templates == 100_000 else None,
                 note=f"{templates:,} x {DIM} float32 templates, {index.identity_count:,} identities, exact top-5")


def _register_identify_stages() -> None:
    for order, (stage, templates) in enumerate(SCALES.items(), start=60):
        extra = " (synthetic, 0.5 GB)" if templates >= 1_000_000 else " (synthetic)"
        bench_stage(stage, summary=f"exact 1:N identify, {templates:,} templates{extra}", order=order)(
            partial(_identify, stage=stage))


_register_identify_stages()


@bench_stage("identify-store-100k", summary="exact 1:N identify over 100k templates loaded from a real store "
                                             "(sealed unless FACEAPP_GALLERY_ENCRYPTION=off)", order=66)
def stage_identify_store(ctx: BenchContext) -> Timed:
    from faceapp.bench.gallery import index_from_store, stored_gallery

    def build() -> tuple[Any, str]:
        store, info = stored_gallery(ctx.work_dir / "identify-store.db", 100_000, DIM)
        with store:
            index, load_s = index_from_store(store, DIM)
        return index, (f"{'sealed (AES-256-GCM), index loaded and decrypted' if info['encrypted'] else 'clear store, index loaded'}"
                       f" in {load_s:.2f} s, written in {info['write_s']:.1f} s")

    index, note = ctx.shared("gallery-store:100000", build)
    probes = itertools.cycle(np.random.default_rng(1).standard_normal((64, DIM), dtype=np.float32))
    return Timed(call=lambda: index.top_identities(next(probes), 5), items=1, unit="query", target=IDENTIFY_TARGET,
                 note=f"100,000 x {DIM} templates, {index.identity_count:,} identities, exact top-5; {note}")


def _att_images(ctx: BenchContext) -> list[list[Path]]:
    root = Path(ctx.options.get("att_dir") or datasets_dir() / "att_faces")
    subjects = [[root / f"s{s}" / f"{i}.pgm" for i in range(1, ENROL_IMAGES + 1)] for s in range(1, 41)]
    if not subjects[0][0].is_file():
        raise DatasetError(f"{root}: AT&T faces (s1..s40/1..10.pgm) not found for the enrolment benchmark; "
                           "set FACEAPP_DATASETS")
    return subjects


def _enrolment(ctx: BenchContext) -> Any:
    """An EnrollmentService on a fresh store in the bench work folder, with the active model."""
    from faceapp.bench.stages_pipeline import workstation
    from faceapp.services.enrollment import EnrollmentService

    def build() -> Any:
        ws = workstation(ctx, "cpu", ctx.work_dir / "bench-gallery.db")
        pipeline = ctx.shared("gallery-pipeline", lambda: ws.create_pipeline("image"))
        return EnrollmentService(ws.store, ws.embedder, pipeline=pipeline, operator="bench")

    return ctx.shared("gallery-enrolment", build)


@bench_stage("enroll-throughput", summary="enrol one identity from 5 AT&T photos: whole path, one transaction",
             order=70)
def stage_enroll_throughput(ctx: BenchContext) -> Timed:
    from faceapp.core.progress import run_to_completion
    from faceapp.storage import NewIdentity

    service = _enrolment(ctx)
    subjects = itertools.cycle(_att_images(ctx))
    counter = itertools.count()

    def call() -> None:
        run_to_completion(service.enroll(NewIdentity(f"bench-{next(counter)}"), next(subjects)))

    return Timed(call=call, items=ENROL_IMAGES, unit="image",
                 note=f"read + detect + align + gate + embed ({service.model.model_id}) + duplicate check + save")


@bench_stage("enroll-transaction", summary="the enrolment transaction alone: identity + 5 crops (PNG) + 5 templates",
             order=71)
def stage_enroll_transaction(ctx: BenchContext) -> Timed:
    from faceapp.core.progress import run_to_completion
    from faceapp.storage import NewIdentity, NewSample

    service = _enrolment(ctx)
    plan = run_to_completion(service.prepare(NewIdentity("bench-prepared"), _att_images(ctx)[0]))
    samples = [NewSample(crop=c.aligned.image, embedding=e, quality=c.quality, source=c.source)
               for c, e in zip(plan.accepted, plan.embeddings)]
    counter = itertools.count()

    def call() -> None:
        service.store.templates.enroll(NewIdentity(f"tx-{next(counter)}"), samples, service.model)

    return Timed(call=call, items=1, unit="identity", note=f"{len(samples)} crops + templates + audit row, SQLite WAL")
