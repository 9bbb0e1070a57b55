"""Key errors through the real ``faceapp`` command (a subprocess, as a user or a script runs it): a missing key
file, a wrong passphrase, a tampered ciphertext and a key rotated away each end with their own exit code and a
message naming the gallery and what to do; ``db check`` reports sealed rows; ``db rotate-key`` (also to
unlinkable templates); an encrypted
``gallery export`` that a wrong passphrase cannot import (nothing half-imported)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from faceapp.core.errors import ExitCode
from faceapp.storage import NewIdentity, Store
from faceapp.storage.keys import KeyOptions
from tests.storage.conftest import MODEL, make_samples as _samples_fixture

REPO = Path(__file__).resolve().parents[2]
FACEAPP = Path(sys.executable).with_name("faceapp")      # the console script the package installs

pytestmark = pytest.mark.slow
make_samples = _samples_fixture                            # random crops and unit templates (tests/storage)


@pytest.fixture
def model():
    return MODEL


def faceapp(*args: str, db: Path, **env: str) -> subprocess.CompletedProcess:
    """Run ``faceapp ARGS --db DB`` with this checkout's code and the test's key folder; stdin is no terminal."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), "FACEAPP_DB": str(db), **env}
    return subprocess.run([str(FACEAPP), *args], env=environment, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def gallery(tmp_path: Path, make_samples, model, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A sealed gallery (key file in its own folder) with Ada (3 samples) and Bob (2)."""
    monkeypatch.setenv("FACEAPP_KEY_DIR", str(tmp_path / "keys"))
    path = tmp_path / "g.db"
    with Store(path, keys=KeyOptions.from_environment()) as store:
        store.templates.enroll(NewIdentity("Ada"), make_samples(3, seed=1), model)
        store.templates.enroll(NewIdentity("Bob"), make_samples(2, seed=2), model)
    return path


def test_check_reports_sealed_rows_and_a_missing_key_file_is_exit_15(gallery: Path, tmp_path: Path) -> None:
    done = faceapp("db", "check", "--json", db=gallery)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"], done.stderr
    assert {k: report["encryption"][k] for k in ("encrypted", "key_source", "crops_sealed", "templates_sealed",
                                                   "crops_clear", "templates_clear")} == {
        "encrypted": True, "key_source": "keyfile", "crops_sealed": 5, "templates_sealed": 5, "crops_clear": 0,
        "templates_clear": 0}
    (key_file,) = (tmp_path / "keys").iterdir()
    key_file.rename(tmp_path / "elsewhere.key")
    crops = tmp_path / "crops"
    done = faceapp("identities", "show", "Ada", "--crops-dir", str(crops), db=gallery)
    assert done.returncode == ExitCode.GALLERY_KEY, done.stderr
    assert f"gallery {gallery}: its key file" in done.stderr and "is missing" in done.stderr
    assert "copy the key file back" in done.stderr and "Traceback" not in done.stderr
    assert not crops.exists() or not any(crops.iterdir())                  # nothing written instead
    key_file.parent.mkdir(exist_ok=True)
    (tmp_path / "elsewhere.key").rename(key_file)                          # the advice works
    assert faceapp("identities", "show", "Ada", "--crops-dir", str(crops), db=gallery).returncode == 0
    assert len(list(crops.glob("*.png"))) == 3


def test_wrong_passphrase_and_tampered_ciphertext(tmp_path: Path, make_samples, model) -> None:
    path = tmp_path / "p.db"
    with Store(path, keys=KeyOptions(passphrase="right one", use_keyring=False)) as store:
        store.templates.enroll(NewIdentity("Ada"), make_samples(2), model)
    crops = tmp_path / "crops"
    done = faceapp("identities", "show", "Ada", "--crops-dir", str(crops), db=path, FACEAPP_GALLERY_KEY="wrong")
    assert done.returncode == ExitCode.GALLERY_KEY and f"gallery {path}: the passphrase is wrong" in done.stderr
    done = faceapp("identities", "show", "Ada", "--crops-dir", str(crops), db=path)
    assert done.returncode == ExitCode.GALLERY_KEY and "FACEAPP_GALLERY_KEY" in done.stderr   # none given, no terminal
    with sqlite3.connect(path) as connection:
        blob = bytearray(connection.execute("SELECT png FROM crops WHERE id = 2").fetchone()[0])
        blob[30] ^= 1
        connection.execute("UPDATE crops SET png = ? WHERE id = 2", (bytes(blob),))
    done = faceapp("identities", "show", "Ada", "--crops-dir", str(crops), db=path, FACEAPP_GALLERY_KEY="right one")
    assert done.returncode == ExitCode.TAMPERED, done.stderr
    assert f"gallery {path}: crop 2 failed authentication" in done.stderr and "restore a backup" in done.stderr


def test_rotate_key_leaves_old_copies_unopenable(gallery: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    assert faceapp("db", "backup", str(old), db=gallery).returncode == 0
    done = faceapp("db", "rotate-key", "--full", "--json", db=gallery)
    summary = json.loads(done.stdout)
    assert done.returncode == 0 and (summary["key_version"], summary["crops"], summary["templates"]) == (2, 5, 5)
    crops = tmp_path / "crops"
    assert faceapp("identities", "show", "Bob", "--crops-dir", str(crops), db=gallery).returncode == 0
    done = faceapp("identities", "show", "Bob", "--crops-dir", str(tmp_path / "old-crops"), db=old)
    assert done.returncode == ExitCode.GALLERY_KEY, done.stderr
    assert f"gallery {old}" in done.stderr and "rotated away" in done.stderr
    done = faceapp("db", "rotate-key", "--unlinkable", "on", db=gallery)          # transforms every template
    assert done.returncode == ExitCode.GALLERY_KEY and "--full" in done.stderr
    done = faceapp("db", "rotate-key", "--full", "--unlinkable", "on", db=gallery)
    assert done.returncode == 0 and "templates are unlinkable" in done.stdout, done.stderr
    report = json.loads(faceapp("db", "check", "--json", db=gallery).stdout)
    assert report["ok"] and report["encryption"]["unlinkable"] and report["encryption"]["key_version"] == 3


def test_encrypted_export_refuses_a_wrong_passphrase_and_imports_nothing(gallery: Path, tmp_path: Path) -> None:
    archive = tmp_path / "g.faceapp"
    done = faceapp("gallery", "export", str(archive), db=gallery, FACEAPP_EXPORT_PASSPHRASE="export pass")
    assert done.returncode == 0, done.stderr
    assert b"\x89PNG" not in archive.read_bytes() and archive.stat().st_mode & 0o777 == 0o600
    target = tmp_path / "other.db"
    done = faceapp("gallery", "import", str(archive), db=target, FACEAPP_EXPORT_PASSPHRASE="wrong")
    assert done.returncode == ExitCode.GALLERY_KEY and "wrong passphrase" in done.stderr and str(archive) in done.stderr
    assert json.loads(faceapp("identities", "list", "--json", db=target).stdout) == []       # nothing half-imported
    done = faceapp("gallery", "import", str(archive), db=target)                              # none given, no terminal
    assert done.returncode == ExitCode.GALLERY_KEY and "FACEAPP_EXPORT_PASSPHRASE" in done.stderr
    done = faceapp("gallery", "import", str(archive), db=target, FACEAPP_EXPORT_PASSPHRASE="export pass")
    assert done.returncode == 0, done.stderr
    names = [i["name"] for i in json.loads(faceapp("identities", "list", "--json", db=target).stdout)]
    assert names == ["Ada", "Bob"]


def test_delete_erases_from_the_backups_and_names_one_that_moved(gallery: Path, tmp_path: Path) -> None:
    kept, moved = tmp_path / "kept.db", tmp_path / "moved.db"
    for copy in (kept, moved):
        assert faceapp("db", "backup", str(copy), db=gallery).returncode == 0
    moved.rename(tmp_path / "elsewhere.db")
    done = faceapp("identities", "delete", "Ada", "--yes", db=gallery)
    assert done.returncode == 0 and "also erased from 1 backup" in done.stdout, done.stderr
    assert f"warning: {moved} (a copy FaceApp made) is no longer there" in done.stderr
    names = [i["name"] for i in json.loads(faceapp("identities", "list", "--json", db=kept).stdout)]
    assert names == ["Bob"]
