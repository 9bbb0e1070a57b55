"""The identity store facade used by the CLI, the GUI and the services.

    with Store() as store:                       # $FACEAPP_DB or <data dir>/faceapp.db, upgraded on open
        store.identities.list("ali")             # IdentityInfo records with template counts
        store.templates.enroll(NewIdentity("Alice"), samples, model_spec)   # one transaction
        store.thresholds.get(model_id); store.audit.query(since=...)

Every method is its own unit of work (a short session and transaction); results are plain records, safe
to hand to another thread. The store is thread-safe (a pooled engine, no shared session).

Crops and templates are sealed with the gallery's key (``faceapp.storage.crypto``); the key is opened on
first use through ``KeyOptions`` (default: from the environment). A SQLite file is created 0600 (its WAL and
SHM inherit that mode), and an existing one is tightened to 0600 when opened.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Literal

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from faceapp.core.errors import DatabaseError
from faceapp.core.files import create_private_file, restrict_file, shred_file
from faceapp.storage.audit import AuditRepository
from faceapp.storage.catalog import ModelRepository, ThresholdRepository
from faceapp.storage.crypto import GalleryCipher, Vault, open_cipher
from faceapp.storage.engine import (
    DEFAULT_BUSY_TIMEOUT_S,
    checkpoint_truncate,
    create_store_engine,
    display_url,
    is_sqlite,
    parse_url,
    resolve_url,
    sqlite_file,
    to_database_error,
)
from faceapp.storage.identities import IdentityRepository
from faceapp.storage.keys import KeyOptions
from faceapp.storage.migrate import SchemaError, SchemaStatus, ensure_schema, head_revision, schema_status
from faceapp.storage.templates import TemplateRepository
from faceapp.storage.uow import UnitOfWork

SchemaMode = Literal["upgrade", "require", "ignore"]


class Store:
    """An open identity store: ``identities``, ``templates``, ``models``, ``thresholds``, ``audit``."""

    def __init__(self, url: str | Path | None = None, *, schema: SchemaMode = "upgrade",
                 busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S, retries: int = 4, echo: bool = False,
                 keys: KeyOptions | None = None) -> None:
        """Open ``url`` (None: $FACEAPP_DB, else the default SQLite file; a bare path means a SQLite file).

        ``schema``: "upgrade" brings an older database to this FaceApp's schema (default), "require"
        refuses one that is not current, "ignore" skips the check (``faceapp db check|upgrade``).
        A newer or foreign database is always refused unless "ignore". ``keys``: where the gallery key comes
        from (default ``KeyOptions.from_environment()``); a gallery made or upgraded here is encrypted unless
        ``keys.encrypt`` is off.
        """
        self.url = parse_url(resolve_url(url))
        self.path: Path | None = sqlite_file(self.url)
        self.busy_timeout_s = busy_timeout_s
        self.keys = keys if keys is not None else KeyOptions.from_environment()
        self._protect_files()
        self.engine: Engine = create_store_engine(self.url, busy_timeout_s=busy_timeout_s, echo=echo)
        self._uow = UnitOfWork(self.engine, self.url, busy_timeout_s=busy_timeout_s, retries=retries)
        self.vault = Vault(self._open_cipher)
        self.schema_before: SchemaStatus | None = None
        self.pre_encryption_backup: Path | None = None
        try:
            if schema != "ignore":
                with self._guard():
                    self.schema_before = ensure_schema(
                        self.engine, self._uow.write_engine, allow_upgrade=(schema == "upgrade"),
                        attributes=self._migration_attributes(), before_upgrade=self._backup_before_encryption)
                self._drop_pre_encryption_backup()
        except DatabaseError:
            self.engine.dispose()
            raise
        self.identities = IdentityRepository(self._uow)
        self.templates = TemplateRepository(self._uow, self.vault)
        self.models = ModelRepository(self._uow)
        self.thresholds = ThresholdRepository(self._uow)
        self.audit = AuditRepository(self._uow)

    # --- files and keys ----------------------------------------------------------------------------
    def _protect_files(self) -> None:
        """Create a new SQLite file 0600 before SQLite does (its -wal/-shm then get the same mode) and tighten
        an existing one; a missing folder is left to SQLite's clear 'cannot open' error."""
        if self.path is None or not self.path.parent.is_dir():
            return
        create_private_file(self.path)
        for suffix in ("-wal", "-shm"):
            restrict_file(self.path.with_name(self.path.name + suffix))

    def _migration_attributes(self) -> dict[str, object]:
        from faceapp.storage.migrate import KEY_OPTIONS, WHERE

        return {KEY_OPTIONS: self.keys, WHERE: self.where}

    def _open_cipher(self) -> GalleryCipher | None:
        return self._uow.read(lambda session: open_cipher(session.connection(), self.keys, self.where))

    def _backup_before_encryption(self, status: SchemaStatus) -> None:
        """Before migration 0003 seals an existing SQLite gallery in place, copy it (0600) beside itself."""
        if self.path is None or status.current is None or not self.keys.encrypt or status.current not in ("0001", "0002"):
            return
        import sqlite3

        from faceapp.storage.schema import utcnow

        target = self.path.with_name(f"{self.path.name}.pre-encryption-{utcnow():%Y%m%dT%H%M%S}.bak")
        create_private_file(target)
        try:
            with sqlite3.connect(self.path) as source, sqlite3.connect(target) as copy:
                source.backup(copy)
            copy.close()
            source.close()
        except sqlite3.Error as error:
            shred_file(target)
            raise DatabaseError(f"database {self.where}: the backup before encrypting it failed ({error}); "
                                "nothing was changed", path=self.where) from error
        self.pre_encryption_backup = target

    def _drop_pre_encryption_backup(self) -> None:
        """Once the sealed gallery opens with its key, overwrite and remove the clear backup (it would keep
        every face in clear); the WAL is checkpointed so no clear page stays there either."""
        if self.pre_encryption_backup is None:
            return
        self.vault.cipher                               # raises (backup kept) when the new key does not open
        checkpoint_truncate(self.engine)
        shred_file(self.pre_encryption_backup)

    @property
    def encrypted(self) -> bool:
        """True when the gallery has a key (its crops and templates are sealed); opens the key."""
        return self.vault.cipher is not None

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
