"""Key-encryption keys (KEK) of encrypted galleries: the OS keyring, a private key file, or a passphrase.

Each encrypted gallery has one random 256-bit data key (DEK, ``faceapp.storage.crypto``) stored in its
database only *wrapped* (AES-256-GCM) by a KEK that never enters the database:

| source | where the KEK lives | chosen when |
|---|---|---|
| ``passphrase`` | derived with scrypt from $FACEAPP_GALLERY_KEY (or a prompt); salt in the database | the variable is set (or ``--key-source passphrase``) |
| ``keyring`` | the OS keyring (Secret Service, macOS Keychain, Windows Credential Locker), entry ``FaceApp gallery key`` / gallery id | a keyring answers and $FACEAPP_KEYRING is not ``off`` |
| ``keyfile`` | ``<user config dir>/keys/<gallery id>-<n>.key``, mode 0600 in a 0700 folder ($FACEAPP_KEY_DIR) | otherwise (headless servers, CI) |

The source is recorded with the wrapped key, so opening a gallery asks that source and no other: a keyring that
refuses, a missing key file or a wrong passphrase is a ``GalleryKeyError`` naming the gallery and what to do,
never a fall-back to clear text.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from faceapp.core.errors import GalleryKeyError

ENV_PASSPHRASE = "FACEAPP_GALLERY_KEY"
ENV_KEYRING = "FACEAPP_KEYRING"              # "off" keeps FaceApp away from the OS keyring
ENV_ENCRYPTION = "FACEAPP_GALLERY_ENCRYPTION"   # "off": new galleries (and upgraded plaintext ones) stay in clear
ENV_UNLINKABLE = "FACEAPP_GALLERY_UNLINKABLE"   # "on": new galleries store templates through a secret transform
KEYRING_SERVICE = "FaceApp gallery key"
KEY_BYTES = 32
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1     # ~32 MiB, ~0.1 s: slows guessing, not opening
KeySource = Literal["keyring", "keyfile", "passphrase"]
SOURCES: tuple[str, ...] = ("keyring", "keyfile", "passphrase")
_OFF = ("0", "off", "no", "false")
_ON = ("1", "on", "yes", "true")


def _env_off(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _OFF


@dataclass
class KeyOptions:
    """How this process finds (or makes) key-encryption keys; ``from_environment()`` is the default."""

    passphrase: str | None = None
    prompt: Callable[[str], str] | None = None     # asks for a passphrase (the CLI's getpass); None: never asks
    use_keyring: bool = True
    key_dir: Path | None = None                    # None: faceapp.core.paths.key_dir()
    encrypt: bool = True                           # new galleries and upgraded plaintext galleries are encrypted
    prefer: KeySource | None = None                # force a source for new keys (rotate-key --to)
    unlinkable: bool = False                       # new galleries get the secret template transform

    @classmethod
    def from_environment(cls, **overrides: Any) -> "KeyOptions":
        """Options from $FACEAPP_GALLERY_KEY, $FACEAPP_KEYRING, $FACEAPP_KEY_DIR, $FACEAPP_GALLERY_ENCRYPTION and
        $FACEAPP_GALLERY_UNLINKABLE."""
        values: dict[str, Any] = {"passphrase": os.environ.get(ENV_PASSPHRASE) or None,
                                  "use_keyring": not _env_off(ENV_KEYRING),
                                  "encrypt": not _env_off(ENV_ENCRYPTION),
                                  "unlinkable": os.environ.get(ENV_UNLINKABLE, "").strip().lower() in _ON}
        values.update(overrides)
        return cls(**values)

    def folder(self) -> Path:
        from faceapp.core.paths import key_dir

        if self.key_dir is None:
            return key_dir()
        from faceapp.core.files import private_dir

        return private_dir(self.key_dir)


@dataclass
class NewKek:
    """A freshly made key-encryption key and what the database records about it."""

    source: KeySource
    kek_id: str                 # names the keyring entry / key file: ``<gallery id>-<random>``, new at every rotation
    key: bytes
    kdf: dict[str, Any] | None = field(default=None)


def derive_key(passphrase: str, kdf: dict[str, Any]) -> bytes:
    """A 256-bit key from a passphrase and scrypt parameters (``{"salt": base64, "n", "r", "p"}``)."""
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    salt = base64.b64decode(kdf["salt"])
    return Scrypt(salt=salt, length=KEY_BYTES, n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"])).derive(
        passphrase.encode("utf-8"))


def _passphrase(options: KeyOptions, where: str, *, new: bool) -> str:
    if options.passphrase:
        return options.passphrase
    if options.prompt is not None:
        text = options.prompt(f"{'new ' if new else ''}passphrase of gallery {where}: ")
        if text:
            return text
    raise GalleryKeyError(f"gallery {where} is protected by a passphrase and none was given: set "
                          f"{ENV_PASSPHRASE} or run the command in a terminal to be asked", path=where)


def _key_file(options: KeyOptions, kek_id: str) -> Path:
    return options.folder() / f"{kek_id}.key"


def _keyring_set(kek_id: str, key: bytes) -> str | None:
    """Store ``key`` in the OS keyring; the refusal's text when no keyring works (None: stored and read back)."""
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, kek_id, base64.b64encode(key).decode("ascii"))
        if keyring.get_password(KEYRING_SERVICE, kek_id) != base64.b64encode(key).decode("ascii"):
            return "the keyring did not return the key it was given"
    except Exception as error:   # noqa: BLE001 - keyring backends raise anything (D-Bus, locked, no backend)
        return f"{type(error).__name__}: {error}"
    return None


def new_kek(options: KeyOptions, gallery_id: str, where: str) -> NewKek:
    """Make a key-encryption key for ``gallery_id``: passphrase when one is given (or preferred), else the OS
    keyring when it works, else a 0600 key file. The keyring is tried only if allowed; its refusal is not an
    error here (the key file is the documented headless place), but a preferred source that fails is."""
    prefer = options.prefer or ("passphrase" if options.passphrase else None)
    kek_id = f"{gallery_id}-{secrets.token_hex(4)}"
    if prefer == "passphrase":
        kdf = {"kdf": "scrypt", "salt": base64.b64encode(os.urandom(16)).decode("ascii"),
               "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}
        return NewKek("passphrase", kek_id, derive_key(_passphrase(options, where, new=True), kdf), kdf)
    key = os.urandom(KEY_BYTES)
    if prefer in (None, "keyring") and options.use_keyring:
        refusal = _keyring_set(kek_id, key)
        if refusal is None:
            return NewKek("keyring", kek_id, key)
        if prefer == "keyring":
            raise GalleryKeyError(f"gallery {where}: the OS keyring refused the new key ({refusal}); unlock it or "
                                  "choose --to keyfile or --to passphrase", path=where)
    elif prefer == "keyring":
        raise GalleryKeyError(f"gallery {where}: the OS keyring is switched off ({ENV_KEYRING}=off)", path=where)
    from faceapp.core.files import atomic_write

    atomic_write(_key_file(options, kek_id), base64.b64encode(key) + b"\n")   # mkstemp: 0600
    return NewKek("keyfile", kek_id, key)


def load_kek(options: KeyOptions, kek_id: str, source: str, kdf: dict[str, Any] | None, where: str) -> bytes:
    """The key-encryption key recorded for a gallery, from the source it was made with (and no other)."""
    if source == "passphrase":
        return derive_key(_passphrase(options, where, new=False), kdf or {})
    if source == "keyring":
        if not options.use_keyring:
            raise GalleryKeyError(f"gallery {where} keeps its key in the OS keyring, which is switched off "
                                  f"({ENV_KEYRING}=off): unset it", path=where)
        try:
            import keyring

            text = keyring.get_password(KEYRING_SERVICE, kek_id)
        except Exception as error:   # noqa: BLE001 - see _keyring_set
            raise GalleryKeyError(f"gallery {where}: the OS keyring refused to give its key ({type(error).__name__}: "
                                  f"{error}); unlock the keyring (or log in to the desktop session) and try again",
                                  path=where) from error
        if text is None:
            raise GalleryKeyError(f"gallery {where}: its key {kek_id} is not in this user's OS keyring (another "
                                  "user or machine, or the key was rotated away): restore it, or open a backup made "
                                  "with the current key", path=where)
        return base64.b64decode(text)
    if source == "keyfile":
        path = _key_file(options, kek_id)
        try:
            return base64.b64decode(path.read_bytes().strip(), validate=True)
        except FileNotFoundError as error:
            raise GalleryKeyError(f"gallery {where}: its key file {path} is missing (another machine or user, "
                                  "FACEAPP_KEY_DIR changed, or the key was rotated away): copy the key file back "
                                  "or open a backup made with the current key", path=where) from error
        except (OSError, ValueError) as error:
            raise GalleryKeyError(f"gallery {where}: its key file {path} cannot be read ({error})", path=where) from error
    raise GalleryKeyError(f"gallery {where} names an unknown key source {source!r} (made by a newer FaceApp?)",
                          path=where)


def forget_kek(options: KeyOptions, kek_id: str, source: str) -> None:
    """Destroy a key-encryption key that was rotated away (overwrite and remove its file, or its keyring entry)."""
    if source == "keyfile":
        from faceapp.core.files import shred_file

        shred_file(_key_file(options, kek_id))
    elif source == "keyring" and options.use_keyring:
        try:
            import keyring

            keyring.delete_password(KEYRING_SERVICE, kek_id)
        except Exception:   # noqa: BLE001 - already gone, or the keyring is locked: nothing more to do here
            pass


def kdf_json(kdf: dict[str, Any] | None) -> str | None:
    return json.dumps(kdf, sort_keys=True) if kdf else None
