"""Passphrase-sealed gallery exports (``faceapp-gallery-sealed/1``): the export zip inside AES-256-GCM.

Layout::

    b"FACEAPP-SEALED-GALLERY\\n"
    u32 header length | header JSON {"format", "kdf": scrypt salt/n/r/p, "chunk"}
    chunks: u32 length | nonce (12) | ciphertext | tag (16)

Each chunk's associated data is the header, its index and a "last chunk" flag, so a wrong passphrase fails on
the header's check value, and a changed, reordered, dropped or truncated chunk fails before anything is imported (the
whole archive is opened in memory first). The key is derived from the passphrase with scrypt (the same
parameters as gallery passphrases).
"""

from __future__ import annotations

import base64
import io
import json
import os
import struct
from pathlib import Path
from typing import BinaryIO

from faceapp.core.errors import GalleryKeyError, InputFileError, TamperedDataError
from faceapp.storage.keys import SCRYPT_N, SCRYPT_P, SCRYPT_R, derive_key

MAGIC = b"FACEAPP-SEALED-GALLERY\n"
FORMAT = "faceapp-gallery-sealed/1"
CHUNK = 1 << 20
ENV_EXPORT_PASSPHRASE = "FACEAPP_EXPORT_PASSPHRASE"
_NONCE = 12
_MAX_HEADER = 4096
_CHECK = b"faceapp/export-passphrase-check"     # an empty value sealed in the header: tells a wrong passphrase apart


def is_sealed(path: str | Path) -> bool:
    """True when ``path`` starts like a sealed export."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">QB", index, 1 if last else 0)


def seal_archive(data: bytes, passphrase: str, out: BinaryIO) -> None:
    """Write ``data`` (the export zip) sealed with ``passphrase`` to ``out``."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not passphrase:
        raise GalleryKeyError("an encrypted export needs a non-empty passphrase")
    kdf = {"kdf": "scrypt", "salt": base64.b64encode(os.urandom(16)).decode("ascii"),
           "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}
    aead = AESGCM(derive_key(passphrase, kdf))
    nonce = os.urandom(_NONCE)
    check = base64.b64encode(nonce + aead.encrypt(nonce, b"", _CHECK)).decode("ascii")
    header = json.dumps({"format": FORMAT, "kdf": kdf, "check": check, "chunk": CHUNK}, sort_keys=True).encode()
    out.write(MAGIC + struct.pack(">I", len(header)) + header)
    count = max(1, -(-len(data) // CHUNK))
    for index in range(count):
        nonce = os.urandom(_NONCE)
        sealed = nonce + aead.encrypt(nonce, data[index * CHUNK:(index + 1) * CHUNK], _aad(header, index, index == count - 1))
        out.write(struct.pack(">I", len(sealed)) + sealed)


def open_archive(path: str | Path, passphrase: str | None) -> io.BytesIO:
    """The clear export zip of a sealed archive, in memory; GalleryKeyError for a missing or wrong passphrase,
    TamperedDataError when the archive was changed or cut short."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    where = str(path)
    if not passphrase:
        raise GalleryKeyError(f"{where} is an encrypted gallery export: give its passphrase (set "
                              f"{ENV_EXPORT_PASSPHRASE}, or run in a terminal to be asked)", path=where)
    with open(path, "rb") as handle:
        handle.read(len(MAGIC))
        size = struct.unpack(">I", handle.read(4).rjust(4, b"\0"))[0]
        header = handle.read(size) if 0 < size <= _MAX_HEADER else b""
        try:
            meta = json.loads(header)
            kdf = meta["kdf"]
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}")
            aead = AESGCM(derive_key(passphrase, kdf))
            check = base64.b64decode(meta["check"])
        except (ValueError, KeyError, TypeError) as error:
            raise InputFileError(f"{where}: the sealed export's header is damaged ({error})", path=where) from error
        try:
            aead.decrypt(check[:_NONCE], check[_NONCE:], _CHECK)
        except (InvalidTag, ValueError) as error:
            raise GalleryKeyError(f"{where}: wrong passphrase for this encrypted export: nothing imported",
                                  path=where) from error
        clear = io.BytesIO()
        index, last_seen = 0, False
        while True:
            prefix = handle.read(4)
            if not prefix:
                break
            length = struct.unpack(">I", prefix.rjust(4, b"\0"))[0]
            sealed = handle.read(length)
            if last_seen or len(sealed) != length or length < _NONCE + 16 or length > CHUNK + _NONCE + 16:
                raise TamperedDataError(f"{where}: the encrypted export is truncated or has extra bytes: nothing "
                                        "imported; copy the file again", path=where)
            peek = handle.peek(1)[:1] if hasattr(handle, "peek") else b""
            last = peek == b""
            try:
                clear.write(aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], _aad(header, index, last)))
            except InvalidTag as error:
                raise TamperedDataError(f"{where}: part {index} of the encrypted export failed authentication (the "
                                        "file was changed or cut short): nothing imported", path=where) from error
            index, last_seen = index + 1, last
        if not last_seen:
            raise TamperedDataError(f"{where}: the encrypted export is truncated: nothing imported", path=where)
    clear.seek(0)
    return clear
