"""Fixtures for the identity store tests: a fresh SQLite store per test and random face samples."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from faceapp.storage import ModelSpec, NewSample, Store

DIM = 16
MODEL = ModelSpec(model_id="tiny@000000000001", name="tiny", embedding_dim=DIM, folder=None, sha256="0" * 64)


@pytest.fixture
def model() -> ModelSpec:
    """The model spec the test templates belong to (dimension DIM)."""
    return MODEL


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "gallery.db"


@pytest.fixture
def store(db_path: Path) -> Store:
    with Store(db_path) as opened:
        yield opened


@pytest.fixture
def make_samples() -> Callable[..., list[NewSample]]:
    """``make_samples(n, seed, dim=DIM, crops=True)``: samples with random crops and unit embeddings."""

    def make(n: int, seed: int = 0, dim: int = DIM, crops: bool = True) -> list[NewSample]:
        rng = np.random.default_rng(seed)
        vectors = rng.standard_normal((n, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return [NewSample(crop=rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) if crops else None,
                          embedding=vectors[i], quality=0.5 + i / 100, source=f"img{i}.jpg") for i in range(n)]

    return make


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """A real PostgreSQL 16 server (the ``pgserver`` wheel, which ships pgvector 0.6) in a temporary folder."""
    import pgserver

    srv = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    yield srv
    srv.cleanup()


@pytest.fixture
def url(server, request) -> str:
    """A fresh database per test on the shared server, as the plain ``postgresql://`` URL the docs tell users
    to give (FaceApp reads it as psycopg 3)."""
    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "").replace("-", "_")[:50]
    server.psql(f'DROP DATABASE IF EXISTS "{name}";')
    server.psql(f'CREATE DATABASE "{name}";')
    return server.get_uri(name)
