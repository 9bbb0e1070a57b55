"""Encryption at rest of face crops and templates: AES-256-GCM with one data key per gallery.

A sealed value is ``nonce (12 bytes) | ciphertext | tag (16 bytes)``; the associated data binds it to its
gallery, its kind (crop or template), its row id, its identity id and (for templates) its model id, so a
ciphertext copied to another row, person, model or gallery fails authentication instead of decrypting.
``crops.key_version`` / ``templates.key_version`` say which data-key version sealed a row (NULL: clear
text, only in galleries made with encryption off, or rows not yet migrated).

The data key is kept in ``gallery_keys`` only wrapped by a key-encryption key from ``faceapp.storage.keys``
(OS keyring, 0600 key file, or passphrase). Templates are decrypted once when the in-memory gallery index
loads them, never written back in clear; identification compares in memory, so its speed does not change.

``encrypt_gallery`` (migration 0003, ``faceapp db encrypt``) seals a clear gallery in place, ``rotate_key``
re-wraps the data key under a new key-encryption key (fast) or re-seals every row under a new data key
(full); both run in one transaction.
"""

from __future__ import annotations

import json
import hashlib
import hmac
import os
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
from sqlalchemy import bindparam, func, literal, select, update
from sqlalchemy.engine import Connection

from faceapp.core.errors import GalleryKeyError, TamperedDataError
from faceapp.storage.keys import KEY_BYTES, KeyOptions, NewKek, forget_kek, kdf_json, load_kek, new_kek
from faceapp.storage.schema import GalleryKey, utcnow

NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = NONCE_BYTES + TAG_BYTES
_BATCH = 500

_crops = GalleryKey.metadata.tables["crops"]
_templates = GalleryKey.metadata.tables["templates"]
_keys = GalleryKey.__table__


def _aesgcm(key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _invalid_tag() -> type[Exception]:
    from cryptography.exceptions import InvalidTag

    return InvalidTag


class GalleryCipher:
    """Seals and opens one gallery's crops and templates with its data key (thread-safe, stateless)."""

    def __init__(self, gallery_id: str, version: int, data_key: bytes, where: str, *, unlinkable: bool = False) -> None:
        if len(data_key) != KEY_BYTES:
            raise GalleryKeyError(f"gallery {where}: its data key has {len(data_key)} bytes, not {KEY_BYTES}", path=where)
        self.gallery_id = gallery_id
        self.version = version
        self.where = where
        self.unlinkable = unlinkable
        self._aead = _aesgcm(data_key)
        self._mac_key = hashlib.sha256(b"faceapp/keyed-digest|" + bytes(data_key)).digest()
        self._transform_key = data_key if unlinkable else None

    def keyed_digest(self, data: bytes) -> str:
        """HMAC-SHA-256 of ``data`` under a key derived from the data key: a checksum of gallery content (e.g. a
        search index's rows) that does not let anyone without the key confirm a guessed template."""
        return hmac.new(self._mac_key, bytes(data), hashlib.sha256).hexdigest()

    def transform(self, model_id: str, dim: int) -> np.ndarray | None:
        """The gallery's secret orthogonal matrix for ``model_id`` templates (None: templates kept as made)."""
        if self._transform_key is None:
            return None
        from faceapp.storage.unlinkable import orthogonal_matrix, transform_seed

        return orthogonal_matrix(transform_seed(self._transform_key, self.gallery_id, model_id, dim), int(dim))

    def to_stored(self, model_id: str, embedding: bytes) -> bytes:
        """A template's float32 bytes as this gallery stores them (transformed when unlinkable)."""
        matrix = self.transform(model_id, len(embedding) // 4)
        if matrix is None:
            return bytes(embedding)
        from faceapp.storage.unlinkable import apply

        return apply(matrix, np.frombuffer(embedding, dtype="<f4")).astype("<f4").tobytes()

    def from_stored(self, model_id: str, stored: bytes) -> bytes:
        """The inverse of ``to_stored``: the template as the model made it."""
        matrix = self.transform(model_id, len(stored) // 4)
        if matrix is None:
            return bytes(stored)
        from faceapp.storage.unlinkable import undo

        return undo(matrix, np.frombuffer(stored, dtype="<f4")).astype("<f4").tobytes()

    def _aad(self, kind: str, row_id: int, identity_id: int, model_id: str | None) -> bytes:
        return f"faceapp/v1|{self.gallery_id}|{kind}|{int(row_id)}|{int(identity_id)}|{model_id or ''}".encode()

    def seal(self, kind: str, row_id: int, identity_id: int, model_id: str | None, data: bytes) -> bytes:
        """``data`` encrypted and bound to its row."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, bytes(data), self._aad(kind, row_id, identity_id, model_id))

    def open(self, kind: str, row_id: int, identity_id: int, model_id: str | None, blob: bytes,
             key_version: int | None) -> bytes:
        """The clear bytes of a stored value; clear rows (``key_version`` None) are returned as they are."""
        if key_version is None:
            return bytes(blob)
        if key_version != self.version:
            raise GalleryKeyError(
                f"gallery {self.where}: {kind} {row_id} was sealed with data key version {key_version}, which was "
                f"rotated away (current version {self.version}); it cannot be read: delete it or restore a backup "
                "together with its key", path=self.where)
        blob = bytes(blob)
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                                      self._aad(kind, row_id, identity_id, model_id))
        except (_invalid_tag(), ValueError) as error:
            raise TamperedDataError(
                f"gallery {self.where}: {kind} {row_id} failed authentication (its bytes were changed, or moved "
                "from another row or gallery); restore a backup, or delete that sample", path=self.where) from error


def _wrap_aad(gallery_id: str, version: int) -> bytes:
    return f"faceapp/data-key|{gallery_id}|{version}".encode()


def _wrap(kek: bytes, data_key: bytes, gallery_id: str, version: int) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + _aesgcm(kek).encrypt(nonce, data_key, _wrap_aad(gallery_id, version))


def _unwrap(kek: bytes, wrapped: bytes, gallery_id: str, version: int, source: str, where: str) -> bytes:
    try:
        return _aesgcm(kek).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_aad(gallery_id, version))
    except (_invalid_tag(), ValueError) as error:
        what = {"passphrase": "the passphrase is wrong",
                "keyring": "the key in the OS keyring is not this gallery's",
                "keyfile": "the key file is not this gallery's"}.get(source, "the key is wrong")
        raise GalleryKeyError(f"gallery {where}: {what} (its data key does not unwrap); give the right "
                              "key, or restore the key that was current when this copy was made", path=where) from error


@dataclass(frozen=True)
class KeyRecord:
    """The ``gallery_keys`` row."""

    gallery_id: str
    key_version: int
    source: str
    kek_id: str
    wrapped: bytes
    kdf: dict[str, Any] | None
    unlinkable: bool = False

    @classmethod
    def read(cls, connection: Connection) -> "KeyRecord | None":
        """The row, or None for a gallery kept in clear (also read by migration 0003, before ``unlinkable``)."""
        flag = _keys.c.unlinkable if _has_unlinkable_column(connection) else literal(False)
        row = connection.execute(select(_keys.c.gallery_id, _keys.c.key_version, _keys.c.source, _keys.c.kek_id,
                                        _keys.c.wrapped, _keys.c.kdf_json, flag).where(_keys.c.id == 1)).first()
        if row is None:
            return None
        return cls(row[0], int(row[1]), row[2], row[3], bytes(row[4]), json.loads(row[5]) if row[5] else None,
                   bool(row[6]))


def _has_unlinkable_column(connection: Connection) -> bool:
    from sqlalchemy import inspect

    return any(column["name"] == "unlinkable" for column in inspect(connection).get_columns("gallery_keys"))


def open_cipher(connection: Connection, options: KeyOptions, where: str) -> GalleryCipher | None:
    """The gallery's cipher (None for a gallery kept in clear); GalleryKeyError when the key cannot be had."""
    record = KeyRecord.read(connection)
    if record is None:
        return None
    kek = load_kek(options, record.kek_id, record.source, record.kdf, where)
    data_key = _unwrap(kek, record.wrapped, record.gallery_id, record.key_version, record.source, where)
    return GalleryCipher(record.gallery_id, record.key_version, data_key, where, unlinkable=record.unlinkable)


def key_source(store: Any) -> str | None:
    """Where a store's gallery key comes from ("keyring", "keyfile", "passphrase"; None: kept in clear)."""
    record = store.uow.read(lambda session: KeyRecord.read(session.connection()))
    return record.source if record is not None else None


def _store_key(connection: Connection, kek: NewKek, data_key: bytes, gallery_id: str, version: int,
               *, replace: bool, unlinkable: bool | None = None) -> None:
    values = {"gallery_id": gallery_id, "key_version": version, "source": kek.source, "kek_id": kek.kek_id,
              "wrapped": _wrap(kek.key, data_key, gallery_id, version), "kdf_json": kdf_json(kek.kdf),
              "rotated_at": utcnow()}
    if unlinkable is not None:
        values["unlinkable"] = unlinkable
    if replace:
        connection.execute(update(_keys).where(_keys.c.id == 1).values(**values))
    else:
        connection.execute(_keys.insert().values(id=1, created_at=utcnow(), **values))


def _batches(connection: Connection, table: Any, blob: Any, model: Any) -> Iterator[list[Any]]:
    after = 0
    while True:
        rows = connection.execute(select(table.c.id, table.c.identity_id, model, blob, table.c.key_version)
                                  .where(table.c.id > after).order_by(table.c.id).limit(_BATCH)).all()
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def reseal_rows(connection: Connection, old: GalleryCipher | None, new: GalleryCipher,
                progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Re-seal every crop and template under ``new`` (opening sealed rows with ``old``), inside the caller's
    transaction; returns how many rows of each kind were written."""
    counts = {"crops": 0, "templates": 0}
    for kind, table, blob, model in (("crop", _crops, _crops.c.png, literal("")),
                                     ("template", _templates, _templates.c.embedding, _templates.c.model_id)):
        column = blob.key
        statement = (update(table).where(table.c.id == bindparam("row_id"))
                     .values({column: bindparam("sealed"), "key_version": bindparam("version")}))
        for rows in _batches(connection, table, blob, model):
            params = []
            for row_id, identity_id, model_id, data, version in rows:
                model_id = model_id if kind == "template" else None
                clear = (old.open(kind, row_id, identity_id, model_id, data, version) if old is not None
                         else _clear_only(data, version, new.where, kind, row_id))
                if kind == "template":                  # renew (or add, or drop) the secret transform
                    clear = new.to_stored(model_id, old.from_stored(model_id, clear) if old is not None else clear)
                params.append({"row_id": row_id, "sealed": new.seal(kind, row_id, identity_id, model_id, clear),
                               "version": new.version})
            connection.execute(statement, params)
            counts[f"{kind}s"] += len(params)
            if progress is not None:
                progress(kind, counts[f"{kind}s"])
    return counts


def _clear_only(data: bytes, version: int | None, where: str, kind: str, row_id: int) -> bytes:
    if version is not None:
        raise GalleryKeyError(f"gallery {where}: {kind} {row_id} is sealed but the gallery has no key record; "
                              "restore a backup", path=where)
    return bytes(data)


def encrypt_gallery(connection: Connection, options: KeyOptions, where: str) -> dict[str, Any] | None:
    """Give a clear gallery a data key and seal every row in place, in the caller's transaction (migration
    0003 and ``faceapp db encrypt``). None when the gallery already has a key."""
    if KeyRecord.read(connection) is not None:
        return None
    gallery_id = str(uuid.uuid4())
    data_key = os.urandom(KEY_BYTES)
    kek = new_kek(options, gallery_id, where)
    _store_key(connection, kek, data_key, gallery_id, 1, replace=False)
    counts = reseal_rows(connection, None, GalleryCipher(gallery_id, 1, data_key, where))
    return {"gallery_id": gallery_id, "key_source": kek.source, "key_version": 1, **counts}


def rotate_key(connection: Connection, options: KeyOptions, where: str, *, full: bool,
               new_options: KeyOptions | None = None,
               unlinkable: bool | None = None) -> tuple[dict[str, Any], Callable[[], None]]:
    """Renew the gallery's keys in the caller's transaction.

    Fast: a new key-encryption key (from ``new_options``, default ``options``) re-wraps the same data key.
    Full: a new data key (version + 1) re-seals every crop and template, under a new key-encryption key too.
    Returns a summary and a function to call after the commit, which destroys the old key-encryption key
    (so copies made before the rotation, e.g. backups, can no longer be opened with it).
    ``unlinkable`` (full only) switches the secret template transform on or off; a full rotation of an
    unlinkable gallery renews its transform (new data key, new matrix).
    """
    record = KeyRecord.read(connection)
    if record is None:
        raise GalleryKeyError(f"gallery {where} is kept in clear: run `faceapp db encrypt` first", path=where)
    if unlinkable is not None and unlinkable != record.unlinkable and not full:
        raise GalleryKeyError(f"gallery {where}: switching unlinkable templates on or off transforms every "
                              "template: add --full", path=where)
    old_data_key = _unwrap(load_kek(options, record.kek_id, record.source, record.kdf, where), record.wrapped,
                           record.gallery_id, record.key_version, record.source, where)
    old = GalleryCipher(record.gallery_id, record.key_version, old_data_key, where, unlinkable=record.unlinkable)
    unlinkable = record.unlinkable if unlinkable is None else unlinkable
    kek = new_kek(new_options or options, record.gallery_id, where)
    summary: dict[str, Any] = {"gallery_id": record.gallery_id, "mode": "full" if full else "fast",
                               "key_source": kek.source, "from_source": record.source, "crops": 0, "templates": 0}
    if full:
        version = record.key_version + 1
        data_key = os.urandom(KEY_BYTES)
        summary.update(reseal_rows(connection, old, GalleryCipher(record.gallery_id, version, data_key, where,
                                                                  unlinkable=unlinkable)))
    else:
        version, data_key = record.key_version, old_data_key
    _store_key(connection, kek, data_key, record.gallery_id, version, replace=True, unlinkable=unlinkable)
    summary.update(key_version=version, unlinkable=unlinkable)
    return summary, lambda: forget_kek(options, record.kek_id, record.source)


def encryption_counts(connection: Connection) -> dict[str, Any]:
    """What ``faceapp db check`` reports: the key record and how many rows are sealed, stale or clear."""
    record = KeyRecord.read(connection)
    current = record.key_version if record else None
    report: dict[str, Any] = {"encrypted": record is not None, "key_source": record.source if record else None,
                              "key_version": current, "unlinkable": bool(record and record.unlinkable)}
    for name, table in (("crops", _crops), ("templates", _templates)):
        rows = dict(connection.execute(select(table.c.key_version, func.count()).group_by(table.c.key_version)).all())
        report[f"{name}_clear"] = int(rows.pop(None, 0))
        report[f"{name}_sealed"] = int(rows.pop(current, 0)) if current is not None else 0
        report[f"{name}_stale_key"] = int(sum(rows.values()))
    return report


class Vault:
    """A store's gallery cipher, opened on first use (commands that never touch faces never need the key)."""

    def __init__(self, load: Callable[[], GalleryCipher | None]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._cipher: GalleryCipher | None = None
        self._loaded = False

    @property
    def cipher(self) -> GalleryCipher | None:
        with self._lock:
            if not self._loaded:
                self._cipher = self._load()
                self._loaded = True
            return self._cipher

    def prepare(self) -> None:
        """Open the key now, before a write transaction seals rows: opening it reads the key record in a short
        transaction of its own, which cannot start inside another on a single-connection (in-memory) database."""
        _ = self.cipher

    def reset(self) -> None:
        """Forget the cipher (after a rotation); the next use opens the key again."""
        with self._lock:
            self._cipher, self._loaded = None, False

    def seal(self, kind: str, row_id: int, identity_id: int, model_id: str | None, data: bytes) -> tuple[bytes, int | None]:
        """(stored bytes, key_version) for a new row: sealed in an encrypted gallery, clear only in a clear one."""
        cipher = self.cipher
        if cipher is None:
            return bytes(data), None
        return cipher.seal(kind, row_id, identity_id, model_id, data), cipher.version

    def open(self, kind: str, row_id: int, identity_id: int, model_id: str | None, blob: bytes,
             key_version: int | None) -> bytes:
        """The clear bytes of a stored row."""
        if key_version is None:
            return bytes(blob)
        cipher = self.cipher
        if cipher is None:
            raise GalleryKeyError(f"{kind} {row_id} is sealed but the gallery has no key record: restore a backup")
        return cipher.open(kind, row_id, identity_id, model_id, blob, key_version)

    def open_crop(self, crop: Any) -> bytes:
        return self.open("crop", crop.id, crop.identity_id, None, crop.png, crop.key_version)

    def open_template(self, template: Any) -> bytes:
        return self.open("template", template.id, template.identity_id, template.model_id, template.embedding,
                         template.key_version)

    def seal_crop(self, crop: Any, png: bytes) -> None:
        """Set a flushed crop row's ``png`` (sealed) and ``key_version``."""
        crop.png, crop.key_version = self.seal("crop", crop.id, crop.identity_id, None, png)

    def seal_template(self, template: Any, embedding: bytes) -> None:
        """Set a flushed template row's ``embedding`` (transformed when unlinkable, sealed) and ``key_version``."""
        cipher = self.cipher
        stored = cipher.to_stored(template.model_id, embedding) if cipher is not None else bytes(embedding)
        template.embedding, template.key_version = self.seal("template", template.id, template.identity_id,
                                                             template.model_id, stored)

    def _matrix(self, model_id: str, vectors: np.ndarray) -> np.ndarray | None:
        cipher = self.cipher
        return cipher.transform(model_id, vectors.shape[-1]) if cipher is not None else None

    def protect(self, model_id: str, vectors: np.ndarray) -> np.ndarray:
        """Probe embeddings mapped into the space the in-memory index holds (unchanged unless unlinkable):
        every comparison of a probe with ``gallery_rows`` goes through here (``Gallery``)."""
        from faceapp.storage.unlinkable import apply

        vectors = np.asarray(vectors, dtype=np.float32)
        matrix = self._matrix(model_id, vectors)
        return vectors if matrix is None else apply(matrix, vectors)

    def unprotect(self, model_id: str, vectors: np.ndarray) -> np.ndarray:
        """Opened templates as the model made them (the transform undone): template records and exports."""
        from faceapp.storage.unlinkable import undo

        vectors = np.asarray(vectors, dtype=np.float32)
        matrix = self._matrix(model_id, vectors)
        return vectors if matrix is None else undo(matrix, vectors)
