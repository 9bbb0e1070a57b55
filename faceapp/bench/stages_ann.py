"""Bench stages of the approximate (FAISS) gallery search: ``identify-ann-100k``, ``-1m`` and ``-5m``.

The templates are synthetic but drawn from the real embedding distribution of the active model: identity
centres from a Gaussian fitted to the centres of the CelebA-subset people embedded with that model, and 5
templates per identity around each centre with the real within-identity spread (``faceapp.bench.gallery``).
``identify-pgvector-20k`` enrols 20,000 such templates into a throw-away PostgreSQL (pgserver, the test
extra, which ships pgvector) and times the identify query answered in the database the same way.
Each FAISS stage builds the FAISS index (HNSW or IVF by size, or ``--ann-kind``), reports its build seconds,
memory and recall@1 / recall@5 of the top-5 identities against the exact search of the same rows over 200
genuine probes (in ``metrics``), and times one approximate identification per call. Not in the default
run (the 1M stage builds for minutes on two cores): name them with ``--stages``.
"""

from __future__ import annotations

import itertools
from functools import partial

from faceapp.bench.framework import BenchContext, Target, Timed, bench_stage, StageSkipped
from faceapp.bench.gallery import ann_case, pgvector_case, real_embedding_stats

ANN_SCALES = {"identify-ann-100k": 100_000, "identify-ann-1m": 1_000_000, "identify-ann-5m": 5_000_000}
ANN_TARGET = Target(max_ms=5.0)      # at 1M templates (with recall@1 >= 0.99)
PGVECTOR_TEMPLATES = 20_000          # enrolled one identity a transaction: minutes beyond this on two cores


def _timed(case: dict, templates: int, engine: str, model_id: str) -> Timed:
    index, metrics = case["index"], case["metrics"]
    probes = itertools.cycle(case["probes"])
    return Timed(call=lambda: index.top_identities(next(probes), 5), items=1, unit="query",
                 target=ANN_TARGET if templates == 1_000_000 else None, metrics=metrics,
                 note=(f"{engine} {metrics['kind']}: build {metrics['build_s']} s, rows {metrics['rows_mb']} MB + index "
                       f"{metrics['index_mb']} MB, recall@1 {metrics['recall@1']}, recall@5 {metrics['recall@5']} vs "
                       f"exact ({metrics['exact_median_ms']} ms/query), {templates:,} templates of "
                       f"{model_id}'s distribution"))


class _Server:
    """A throw-away PostgreSQL server (pgserver, the test extra) in the bench work folder."""

    def __init__(self, folder) -> None:
        import pgserver

        self.server = pgserver.get_server(folder, cleanup_mode="stop")

    def close(self) -> None:
        self.server.cleanup()


def _pgvector(ctx: BenchContext) -> Timed:
    try:
        import pgserver  # noqa: F401 - the test extra
    except ImportError as error:
        raise StageSkipped(f"needs pgserver (pip install 'faceapp[test]'): {error}") from error
    stats = ctx.shared("embedding-stats", lambda: real_embedding_stats(ctx.options.get("model_dir")))
    server = ctx.shared("pgserver", lambda: _Server(ctx.work_dir / "pgdata"))
    server.server.psql('DROP DATABASE IF EXISTS bench; CREATE DATABASE bench;')
    case = pgvector_case(stats, PGVECTOR_TEMPLATES, server.server.get_uri("bench"))
    ctx.shared("pgvector-store", lambda: case["store"])
    return _timed(case, PGVECTOR_TEMPLATES, "PostgreSQL", stats.model_id)


def _ann(ctx: BenchContext, stage: str) -> Timed:
    from faceapp.matching.ann import AnnUnavailableError, load_faiss

    try:
        load_faiss()
    except AnnUnavailableError as error:
        raise StageSkipped(str(error)) from error
    templates = ANN_SCALES[stage]
    kind = ctx.options.get("ann_kind")
    stats = ctx.shared("embedding-stats", lambda: real_embedding_stats(ctx.options.get("model_dir")))
    return _timed(ann_case(stats, templates, kind=kind), templates, "FAISS", stats.model_id)


for _order, (_stage, _templates) in enumerate(ANN_SCALES.items(), start=64):
    bench_stage(_stage, summary=f"approximate 1:N identify (FAISS), {_templates:,} templates of the real "
                                f"embedding distribution, recall vs exact", order=_order, default=False)(
        partial(_ann, stage=_stage))


bench_stage("identify-pgvector-20k", summary="server-side 1:N identify in PostgreSQL (pgvector HNSW), 20,000 "
                                             "templates of the real embedding distribution, recall vs exact",
            order=67, default=False)(_pgvector)
