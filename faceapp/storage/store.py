"""The identity store facade used by the CLI, the GUI and the services.

    with Store() as store:                       # $FACEAPP_DB or <data dir>/faceapp.db, upgraded on open
        store.identities.list("ali")             # IdentityInfo records with template counts
        store.templates.enroll(NewIdentity("Alice"), samples, model_spec)   # one transaction
        store.thresholds.get(model_id); store.audit.query(since=...)

Every method is its own unit of work (a short session and transaction); results are plain records, safe
to hand to another thread. The store is thread-safe (a pooled engine, no shared session).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Literal

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from faceapp.core.errors import DatabaseError
from faceapp.storage.audit import AuditRepository
from faceapp.storage.catalog import ModelRepository, ThresholdRepository
from faceapp.storage.engine import (
    DEFAULT_BUSY_TIMEOUT_S,
    create_store_engine,
    display_url,
    is_sqlite,
    parse_url,
    resolve_url,
    sqlite_file,
    to_database_error,
)
from faceapp.storage.identities import IdentityRepository
from faceapp.storage.migrate import SchemaError, SchemaStatus, ensure_schema, head_revision, schema_status
from faceapp.storage.templates import TemplateRepository
from faceapp.storage.uow import UnitOfWork

SchemaMode = Literal["upgrade", "require", "ignore"]


class Store:
    """An open identity store: ``identities``, ``templates``, ``models``, ``thresholds``, ``audit``."""

    def __init__(self, url: str | Path | None = None, *, schema: SchemaMode = "upgrade",
                 busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S, retries: int = 4, echo: bool = False) -> None:
        """Open ``url`` (None: $FACEAPP_DB, else the default SQLite file; a bare path means a SQLite file).

        ``schema``: "upgrade" brings an older database to this FaceApp's schema (default), "require"
        refuses one that is not current, "ignore" skips the check (``faceapp db check|upgrade``).
        A newer or foreign database is always refused unless "ignore".
        """
        self.url = parse_url(resolve_url(url))
        self.path: Path | None = sqlite_file(self.url)
        self.busy_timeout_s = busy_timeout_s
        self.engine: Engine = create_store_engine(self.url, busy_timeout_s=busy_timeout_s, echo=echo)
        self._uow = UnitOfWork(self.engine, self.url, busy_timeout_s=busy_timeout_s, retries=retries)
        self.schema_before: SchemaStatus | None = None
        try:
            if schema != "ignore":
                with self._guard():
                    self.schema_before = ensure_schema(self.engine, self._uow.write_engine,
                                                       allow_upgrade=(schema == "upgrade"))
        except DatabaseError:
            self.engine.dispose()
            raise
        self.identities = IdentityRepository(self._uow)
        self.templates = TemplateRepository(self._uow)
        self.models = ModelRepository(self._uow)
        self.thresholds = ThresholdRepository(self._uow)
        self.audit = AuditRepository(self._uow)

    @property
    def where(self) -> str:
        """The database for messages: the SQLite file path, or the URL without its password."""
        return display_url(self.url)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @property
    def uow(self) -> UnitOfWork:
        """The unit-of-work runner (for maintenance code that needs raw sessions)."""
        return self._uow

    @property
    def upgraded(self) -> bool:
        """True when opening this store upgraded its schema (or created it)."""
        return self.schema_before is not None and not self.schema_before.up_to_date

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Name the database in schema errors and translate driver errors."""
        try:
            yield
        except SchemaError as error:
            raise DatabaseError(f"database {self.where} {error}", path=self.where) from error
        except SQLAlchemyError as error:
            raise to_database_error(error, self.url, busy_timeout_s=self.busy_timeout_s) from error

    def schema_status(self) -> SchemaStatus:
        """The schema revision stamped in the database against the newest this FaceApp knows."""
        with self._guard(), self.engine.connect() as connection:
            return schema_status(connection)

    def upgrade(self) -> SchemaStatus:
        """Upgrade the schema to the newest revision (``faceapp db upgrade``); returns the status before."""
        with self._guard():
            return ensure_schema(self.engine, self._uow.write_engine, allow_upgrade=True)

    def revision(self) -> int:
        """The gallery revision (grows with every identity or template change)."""
        return self.templates.revision()

    @staticmethod
    def head_revision() -> str:
        return head_revision()

    def close(self) -> None:
        """Release every pooled connection (SQLite then checkpoints and removes its -wal file)."""
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.where!r})"
