"""Server-side nearest-template search in a PostgreSQL gallery with the pgvector extension (HNSW, cosine).

The templates table keeps its float32 bytes (the source of truth, readable by every workstation and by
SQLite); ``template_vectors`` holds the same embeddings as pgvector ``vector`` values, one row per template,
deleted with it (``ON DELETE CASCADE``). Each model gets a partial HNSW index over
``embedding::vector(<dim>)`` with ``vector_cosine_ops`` for its rows, so a query ranks one model's templates
by cosine distance inside the database and returns only the nearest ones.

``pgvector_capability`` says whether this store can do it: PostgreSQL, the extension available on the server,
and either already created in the database or creatable by this user (``CREATE EXTENSION`` needs the
rights of the database owner or a superuser, since pgvector is not a trusted extension). Its answer is a
sentence the caller shows when it falls back to the in-memory search.
"""

from __future__ import annotations

import hashlib
import numpy as np
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from faceapp.storage.store import Store

TABLE = "template_vectors"


def pgvector_capability(store: Store) -> str | None:
    """None when ``store`` can search templates server-side with pgvector, else why not (one sentence)."""
    if store.is_sqlite:
        return "the database is SQLite (server-side search needs PostgreSQL with pgvector)"
    if store.url.get_backend_name() != "postgresql":
        return f"the database is {store.url.get_backend_name()} (server-side search needs PostgreSQL with pgvector)"
    try:
        with store.engine.connect() as connection:
            installed = connection.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
            if installed is not None:
                return None
            available = connection.execute(text(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")).scalar()
            if available is None:
                return (f"the PostgreSQL server of {store.where} has no pgvector extension "
                        "(install pgvector on the server, then `CREATE EXTENSION vector`)")
        with store.engine.begin() as connection:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        return (f"pgvector is not enabled in {store.where} and this user cannot enable it ({reason}); "
                "ask the database owner to run `CREATE EXTENSION vector`")
    return None


def _literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{v:.8g}" for v in np.asarray(vector, dtype=np.float32).tolist()) + "]"


class VectorSearch:
    """pgvector search over one model's templates (the extension must be usable: ``pgvector_capability``)."""

    def __init__(self, store: Store, model_id: str, dim: int) -> None:
        self.store = store
        self.model_id = model_id
        self.dim = int(dim)
        self.index_name = "tv_hnsw_" + hashlib.sha256(model_id.encode()).hexdigest()[:16]
        self._cast = f"embedding::vector({self.dim})"

    def ensure(self) -> None:
        """Create the vectors table and this model's partial HNSW index when missing."""
        with self.store.engine.begin() as connection:
            connection.execute(text(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (template_id integer PRIMARY KEY "
                "REFERENCES templates(id) ON DELETE CASCADE, model_id varchar(200) NOT NULL, embedding vector NOT NULL)"))
            connection.execute(text(
                f"CREATE INDEX IF NOT EXISTS {self.index_name} ON {TABLE} USING hnsw (({self._cast}) "
                f"vector_cosine_ops) WHERE model_id = '{self.model_id.replace(chr(39), chr(39) * 2)}'"))

    def stored_ids(self) -> np.ndarray:
        with self.store.engine.connect() as connection:
            ids = connection.execute(text(f"SELECT template_id FROM {TABLE} WHERE model_id = :m"),
                                     {"m": self.model_id}).scalars().all()
        return np.asarray(ids, dtype=np.int64)

    def push(self, template_ids: np.ndarray, vectors: np.ndarray, *, known_new: bool = False, chunk: int = 2000) -> int:
        """Store the vectors of templates not yet in the table; idempotent (a row already there is kept, a template
        deleted meanwhile is skipped). ``known_new``: the ids were just enrolled, skip reading the stored ids."""
        ids = np.asarray(template_ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        missing = np.ones(ids.size, dtype=bool) if known_new else ~np.isin(ids, self.stored_ids())
        added = 0
        rows = [{"t": int(t), "m": self.model_id, "e": _literal(v)} for t, v in zip(ids[missing], vectors[missing])]
        for start in range(0, len(rows), chunk):
            with self.store.engine.begin() as connection:
                result = connection.execute(text(
                    f"INSERT INTO {TABLE} (template_id, model_id, embedding) SELECT :t, :m, CAST(:e AS vector) "
                    "WHERE EXISTS (SELECT 1 FROM templates WHERE id = :t) ON CONFLICT (template_id) DO NOTHING"),
                    rows[start:start + chunk])
                added += max(int(result.rowcount or 0), 0)
        return added

    def nearest(self, probe: np.ndarray, count: int, *, ef_search: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(template ids, identity ids, cosine similarities) of the ``count`` nearest templates, best first."""
        with self.store.engine.begin() as connection:
            connection.execute(text(f"SET LOCAL hnsw.ef_search = {int(max(ef_search, count))}"))
            rows = connection.execute(text(
                f"SELECT v.template_id, t.identity_id, 1 - (v.{self._cast} <=> CAST(:p AS vector({self.dim}))) "
                f"FROM {TABLE} v JOIN templates t ON t.id = v.template_id WHERE v.model_id = :m "
                f"ORDER BY v.{self._cast} <=> CAST(:p AS vector({self.dim})) LIMIT :k"),
                {"p": _literal(probe), "m": self.model_id, "k": int(count)}).all()
        if not rows:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0, dtype=np.float32)
        tids, iids, scores = zip(*rows)
        return (np.asarray(tids, dtype=np.int64), np.asarray(iids, dtype=np.int64),
                np.asarray(scores, dtype=np.float32))

    def explain(self, probe: np.ndarray, count: int = 10) -> str:
        """The query plan of ``nearest`` (tests check the HNSW index is used)."""
        with self.store.engine.begin() as connection:
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            plan = connection.execute(text(
                f"EXPLAIN SELECT v.template_id FROM {TABLE} v WHERE v.model_id = :m "
                f"ORDER BY v.{self._cast} <=> CAST(:p AS vector({self.dim})) LIMIT :k"),
                {"p": _literal(probe), "m": self.model_id, "k": int(count)}).scalars().all()
        return "\n".join(plan)

