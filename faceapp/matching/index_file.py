"""A FAISS index persisted next to the gallery database, with a header that says what it was built from.

Layout: the line ``FACEAPP-ANN-INDEX 1``, one JSON header line (model id, dimension, kind, template count,
content digest, FAISS version, SHA-256 of what follows), then the ``.npy`` array of the template ids it holds, then FAISS's own
serialised bytes. The digest is SHA-256 over the (template id, identity id, unit row) triples it holds,
in template-id order (in an encrypted gallery the ids and FAISS bytes are sealed with the gallery's data key,
AES-256-GCM bound to the model id, and the digest is keyed: the file never holds templates in clear), so a file is reused only when every row it holds is still in the gallery with the
same content (rows enrolled since are searched exactly until the next rebuild); anything else - another
model or dimension, a changed or deleted row, a damaged file - raises ``IndexFileError`` naming the file,
and the owner rebuilds from the database (the file is only ever a cache of it: nothing is lost).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.core.errors import ExitCode, FaceAppError
from faceapp.core.files import atomic_file
from faceapp.matching.ann import FaissIndex

MAGIC = b"FACEAPP-ANN-INDEX 1\n"
SEALED_KIND = "ann-index"        # the AAD kind of a sealed payload (faceapp.storage.crypto.GalleryCipher)
SUFFIX = ".faiss"


class IndexFileError(FaceAppError):
    """A persisted index that cannot serve this gallery (foreign, stale or damaged); rebuilt from the database."""

    exit_code = ExitCode.INCOMPATIBLE


def content_digest(index: FaissIndex, ids: np.ndarray) -> str | None:
    """SHA-256 of the rows of template ``ids`` (sorted) in ``index``, or None when one of them is missing."""
    sorted_tids, order, _ = index.row_lookup()
    at = np.searchsorted(sorted_tids, ids).clip(max=max(len(sorted_tids) - 1, 0))
    if ids.size and (len(sorted_tids) == 0 or not np.array_equal(sorted_tids[at], ids)):
        return None
    rows = order[at] if ids.size else np.empty(0, dtype=np.int64)
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(ids, dtype="<i8").tobytes())
    digest.update(np.ascontiguousarray(index.identity_ids[rows], dtype="<i8").tobytes())
    for start in range(0, rows.size, 65536):
        digest.update(np.ascontiguousarray(index.matrix[rows[start:start + 65536]], dtype="<f4").tobytes())
    return digest.hexdigest()


def save_index(path: str | Path, index: FaissIndex, *, cipher: Any = None) -> Path:
    """Write ``index``'s FAISS snapshot to ``path`` atomically (never a half-written file); sealed with
    ``cipher`` (the gallery's GalleryCipher) when given."""
    if not index.built:
        raise ValueError("the FAISS index has not been built")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with index.state_lock:                  # rows and snapshot read together (a background build may swap it)
        ids = index.snapshot_ids
        header = {"model_id": index.model_id, "dim": index.dim, "kind": index.kind, "templates": int(ids.size),
                  "digest": _keyed(content_digest(index, ids), cipher),
                  "faiss": getattr(index.faiss, "__version__", "?"), "sealed": cipher is not None}
        ids_npy = io.BytesIO()
        np.save(ids_npy, ids, allow_pickle=False)
        payload = ids_npy.getvalue() + index.faiss.serialize_index(index.ann).tobytes()
    if cipher is not None:
        payload = cipher.seal(SEALED_KIND, 0, 0, index.model_id, payload)
    header["payload_sha256"] = hashlib.sha256(payload).hexdigest()
    with atomic_file(path) as fh:
        fh.write(MAGIC)
        fh.write(json.dumps(header).encode() + b"\n")
        fh.write(payload)
    return path


def read_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of an index file; IndexFileError when it is not one."""
    with open(path, "rb") as fh:
        magic = fh.read(len(MAGIC))
        line = fh.readline(65536)
    if magic != MAGIC:
        raise IndexFileError(f"{path} is not a FaceApp index file (bad signature)", path=str(path))
    try:
        header = json.loads(line)
        if not isinstance(header, dict) or not {"model_id", "dim", "kind", "templates", "digest",
                                                "payload_sha256"} <= header.keys():
            raise ValueError("fields missing")
    except ValueError as error:
        raise IndexFileError(f"{path}: damaged header ({error})", path=str(path)) from error
    return header


def _keyed(digest: str | None, cipher: Any) -> str | None:
    """The content digest as stored: keyed with the gallery's cipher in an encrypted gallery (a plain hash of
    the rows would let anyone holding a guessed template confirm it is in the file)."""
    if cipher is None or digest is None:
        return digest
    return cipher.keyed_digest(digest.encode())


def load_index(path: str | Path, index: FaissIndex, *, cipher: Any = None) -> dict[str, Any]:
    """Attach the snapshot stored at ``path`` to ``index`` (whose rows come from the database); returns the
    header. IndexFileError (nothing attached) when the file is for another model or dimension, holds rows the
    gallery no longer has or has with other content, or is damaged."""
    path = Path(path)
    header = read_header(path)
    if header["model_id"] != index.model_id or int(header["dim"]) != index.dim:
        raise IndexFileError(f"{path} was built for model {header['model_id']} ({header['dim']} values), not "
                             f"{index.model_id} ({index.dim} values)", path=str(path))
    raw = path.read_bytes()
    start = len(MAGIC) + raw[len(MAGIC):].index(b"\n") + 1
    if hashlib.sha256(raw[start:]).hexdigest() != header["payload_sha256"]:
        raise IndexFileError(f"{path}: damaged index data (checksum mismatch)", path=str(path))
    if bool(header.get("sealed")) != (cipher is not None):
        state = "sealed" if header.get("sealed") else "in clear"
        raise IndexFileError(f"{path} was written {state}, which does not fit this gallery's encryption",
                             path=str(path))
    payload = raw[start:]
    if cipher is not None:
        try:
            payload = cipher.open(SEALED_KIND, 0, 0, index.model_id, payload, cipher.version)
        except FaceAppError as error:
            raise IndexFileError(f"{path}: cannot be opened with this gallery's key ({error})", path=str(path)) from error
    try:
        stream = io.BytesIO(payload)
        ids = np.load(stream, allow_pickle=False)
        ann = index.faiss.deserialize_index(np.frombuffer(payload[stream.tell():], dtype=np.uint8))
    except (ValueError, RuntimeError, OSError, EOFError) as error:
        raise IndexFileError(f"{path}: damaged index data ({str(error).splitlines()[0] if str(error) else error})",
                             path=str(path)) from error
    if ids.dtype != np.int64 or ids.ndim != 1 or ids.size != int(header["templates"]) or ann.ntotal != ids.size \
            or ann.d != index.dim or header["kind"] not in ("hnsw", "ivf"):
        raise IndexFileError(f"{path}: damaged index data (counts or dimension disagree with its header)",
                             path=str(path))
    if _keyed(content_digest(index, ids), cipher) != header["digest"]:
        raise IndexFileError(f"{path} is stale: templates it holds were changed or deleted since it was built",
                             path=str(path))
    index.attach(ann, header["kind"], ids)
    return header


def index_path(store_path: Path | None, url_text: str, model_id: str, cache_root: Path) -> Path:
    """Where the FAISS index of ``model_id`` lives: beside a SQLite file (``<db>.index/<model>.faiss``), else
    under ``cache_root`` in a folder named by a hash of the database URL."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id) + SUFFIX
    if store_path is not None:
        return store_path.with_name(store_path.name + ".index") / name
    return cache_root / "indexes" / hashlib.sha256(url_text.encode()).hexdigest()[:16] / name
