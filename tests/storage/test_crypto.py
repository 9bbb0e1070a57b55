"""Encryption at rest (faceapp.storage.crypto / keys): sealed crops and templates bound to their rows, the three
key sources and their refusals, migration 0003 of a clear gallery, key rotation, sealed exports, and the
raw-byte evidence that a deleted person leaves nothing in the database file, its WAL or its backups."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest
from keyring.backend import KeyringBackend

from faceapp.core.errors import GalleryKeyError, TamperedDataError
from faceapp.storage import NewIdentity, Store
from faceapp.storage.codec import encode_png
from faceapp.storage.keys import KeyOptions
from faceapp.storage.maintenance import backup, check, encrypt, rotate_key
from faceapp.storage.transfer import export_gallery, import_gallery


def raw(path: Path) -> bytes:
    """The database file and its -wal and -shm files, as they are on disk."""
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def stored(path: Path, table: str, column: str) -> list:
    with sqlite3.connect(path) as connection:
        return [r[0] for r in connection.execute(f"SELECT {column} FROM {table} ORDER BY id")]


def fragments(blob: bytes) -> list[bytes]:
    """32-byte pieces of a value every 700 bytes, past the first 64 (PNG headers are alike): a crop spans SQLite
    overflow pages, so its bytes are not contiguous on disk, but most pieces lie within one page."""
    if len(blob) < 128:
        return [blob]
    return [blob[start:start + 32] for start in range(64, len(blob) - 32, 700)]


def on_disk(blob: bytes, disk: bytes) -> bool:
    """True when any piece of ``blob`` is in ``disk``."""
    return any(piece in disk for piece in fragments(blob))


def test_new_gallery_is_sealed_and_reads_back(store: Store, db_path: Path, make_samples, model) -> None:
    samples = make_samples(2)
    store.templates.enroll(NewIdentity("Ada"), samples, model)
    assert store.encrypted
    assert [c.png for c in store.templates.crops("Ada")] == [encode_png(s.crop) for s in samples]
    rows = store.templates.gallery_rows(model.model_id, model.embedding_dim)
    np.testing.assert_array_equal(rows.embeddings, np.stack([s.embedding for s in samples]))
    for blob in stored(db_path, "crops", "png"):
        assert not blob.startswith(b"\x89PNG")
    store.close()
    disk = raw(db_path)
    for sample in samples:
        assert not on_disk(encode_png(sample.crop), disk) and not on_disk(sample.embedding.astype("<f4").tobytes(), disk)
    report = check(Store(db_path))
    assert report.ok and report.encryption["crops_sealed"] == 2 and report.encryption["templates_sealed"] == 2
    assert report.encryption["key_source"] == "keyfile" and report.encryption["crops_clear"] == 0


def test_a_ciphertext_moved_or_changed_fails_authentication(store: Store, db_path: Path, make_samples, model) -> None:
    store.templates.enroll(NewIdentity("Ada"), make_samples(1), model)
    store.templates.enroll(NewIdentity("Bob"), make_samples(1, seed=3), model)
    store.close()
    with sqlite3.connect(db_path) as connection:        # Bob's template bytes copied onto Ada's row
        connection.execute("UPDATE templates SET embedding = (SELECT embedding FROM templates WHERE id = 2) WHERE id = 1")
    with Store(db_path) as opened, pytest.raises(TamperedDataError, match=rf"{db_path}.*template 1 failed auth"):
        opened.templates.for_identity("Ada")
    with sqlite3.connect(db_path) as connection:        # one bit of a crop flipped
        blob = bytearray(stored(db_path, "crops", "png")[1])
        blob[40] ^= 1
        connection.execute("UPDATE crops SET png = ? WHERE id = 2", (bytes(blob),))
    with Store(db_path) as opened, pytest.raises(TamperedDataError, match="crop 2"):
        opened.templates.crops("Bob")


def test_missing_key_file_and_wrong_passphrase_are_refused(tmp_path: Path, make_samples, model) -> None:
    keys = KeyOptions(key_dir=tmp_path / "keys", use_keyring=False)
    with Store(tmp_path / "a.db", keys=keys) as store:
        store.templates.enroll(NewIdentity("Ada"), make_samples(1), model)
    for key_file in (tmp_path / "keys").iterdir():
        key_file.rename(tmp_path / key_file.name)
    with Store(tmp_path / "a.db", keys=keys) as store:
        assert store.identities.count() == 1                   # what needs no face still works
        with pytest.raises(GalleryKeyError, match=rf"{tmp_path / 'a.db'}: its key file .* is missing"):
            store.templates.crops("Ada")
        with pytest.raises(GalleryKeyError):                  # and nothing is written in clear instead
            store.templates.enroll(NewIdentity("Bob"), make_samples(1), model)
    assert stored(tmp_path / "a.db", "identities", "name") == ["Ada"]

    secret = KeyOptions(passphrase="correct horse", use_keyring=False)
    with Store(tmp_path / "p.db", keys=secret) as store:
        store.templates.enroll(NewIdentity("Ada"), make_samples(1), model)
        assert check(store).encryption["key_source"] == "passphrase"
    with Store(tmp_path / "p.db", keys=KeyOptions(passphrase="wrong", use_keyring=False)) as store, \
            pytest.raises(GalleryKeyError, match="passphrase is wrong"):
        store.templates.crops("Ada")
    with Store(tmp_path / "p.db", keys=KeyOptions(use_keyring=False)) as store, \
            pytest.raises(GalleryKeyError, match="FACEAPP_GALLERY_KEY"):
        store.templates.crops("Ada")


class MemoryKeyring(KeyringBackend):
    """A working keyring kept in memory (the real ``keyring`` API, without a desktop session)."""

    priority = 1
    entries: dict[tuple[str, str], str] = {}
    refuse = False

    def get_password(self, service: str, username: str) -> str | None:
        if self.refuse:
            raise RuntimeError("the keyring is locked")
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


def test_keyring_holds_the_key_and_a_refusing_keyring_is_a_clear_error(tmp_path: Path, make_samples, model) -> None:
    import keyring

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    try:
        keys = KeyOptions(key_dir=tmp_path / "keys")
        with Store(tmp_path / "k.db", keys=keys) as store:
            store.templates.enroll(NewIdentity("Ada"), make_samples(1), model)
            assert check(store).encryption["key_source"] == "keyring" and len(MemoryKeyring.entries) == 1
        assert not (tmp_path / "keys").exists() or not any((tmp_path / "keys").iterdir())
        MemoryKeyring.refuse = True
        with Store(tmp_path / "k.db", keys=keys) as store, \
                pytest.raises(GalleryKeyError, match="keyring refused to give its key .*locked"):
            store.templates.crops("Ada")
    finally:
        MemoryKeyring.refuse = False
        MemoryKeyring.entries.clear()
        keyring.set_keyring(previous)


def make_clear_gallery_at_0002(path: Path, make_samples, model) -> list:
    """A gallery as FaceApp made it before encryption (schema 0002, crops and templates in clear)."""
    from alembic import command

    from faceapp.storage.migrate import alembic_config

    samples = make_samples(3)
    with Store(path, keys=KeyOptions(encrypt=False, use_keyring=False)) as store:
        store.templates.enroll(NewIdentity("Ada"), samples, model)
        with store.uow.write_engine.connect() as connection, connection.begin():
            command.downgrade(alembic_config(connection), "0002")
    return samples


def test_migration_seals_a_clear_gallery_in_place_and_removes_its_backup(tmp_path: Path, make_samples, model) -> None:
    path = tmp_path / "old.db"
    samples = make_clear_gallery_at_0002(path, make_samples, model)
    assert on_disk(encode_png(samples[0].crop), raw(path))      # the old gallery holds faces in clear
    with Store(path) as store:
        assert store.schema_before.current == "0002" and store.encrypted
        assert store.pre_encryption_backup is not None and not store.pre_encryption_backup.exists()
        assert [c.png for c in store.templates.crops("Ada")] == [encode_png(s.crop) for s in samples]
        assert check(store).encryption["templates_sealed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir() if "bak" in p.name) == []
    disk = raw(path)
    for sample in samples:
        assert not on_disk(encode_png(sample.crop), disk) and not on_disk(sample.embedding.astype("<f4").tobytes(), disk)


def test_clear_gallery_stays_clear_when_encryption_is_off_and_db_encrypt_seals_it(tmp_path: Path, make_samples,
                                                                                  model) -> None:
    path = tmp_path / "clear.db"
    with Store(path, keys=KeyOptions(encrypt=False, use_keyring=False, key_dir=tmp_path / "k")) as store:
        store.templates.enroll(NewIdentity("Ada"), make_samples(2), model)
        report = check(store)
        assert not report.encryption["encrypted"] and report.encryption["crops_clear"] == 2
        summary = encrypt(store)
        assert (summary["crops"], summary["templates"]) == (2, 2) and encrypt(store) is None
        assert check(store).encryption["crops_sealed"] == 2 and len(store.templates.crops("Ada")) == 2


def test_rotation_fast_rewraps_full_reseals_and_old_backups_no_longer_open(tmp_path: Path, make_samples, model) -> None:
    keys = KeyOptions(key_dir=tmp_path / "keys", use_keyring=False)
    path = tmp_path / "g.db"
    samples = make_samples(2)
    with Store(path, keys=keys) as store:
        store.templates.enroll(NewIdentity("Ada"), samples, model)
        before = stored(path, "templates", "embedding")
        old_key_files = set((tmp_path / "keys").iterdir())
        old_copy = backup(store, tmp_path / "before.db")
        fast = rotate_key(store, full=False)
        assert fast["key_version"] == 1 and stored(path, "templates", "embedding") == before
        assert set((tmp_path / "keys").iterdir()).isdisjoint(old_key_files)
        full = rotate_key(store, full=True)
        assert full["key_version"] == 2 and (full["crops"], full["templates"]) == (2, 2)
        assert set(stored(path, "templates", "embedding")).isdisjoint(before)
        assert [c.png for c in store.templates.crops("Ada")] == [encode_png(s.crop) for s in samples]
        to_passphrase = rotate_key(store, full=False, new_keys=KeyOptions(prefer="passphrase", passphrase="s3cret",
                                                                           use_keyring=False))
        assert to_passphrase["key_source"] == "passphrase" and not any((tmp_path / "keys").iterdir())
    with Store(path, keys=KeyOptions(passphrase="s3cret", use_keyring=False)) as store:
        assert len(store.templates.crops("Ada")) == 2
    with Store(old_copy, keys=keys) as store, pytest.raises(GalleryKeyError, match="rotated away"):
        store.templates.crops("Ada")


def test_sealed_export_round_trip_and_refusals(store: Store, tmp_path: Path, make_samples, model) -> None:
    samples = make_samples(2)
    store.templates.enroll(NewIdentity("Ada"), samples, model)
    archive = tmp_path / "g.faceapp"
    export_gallery(store, archive, passphrase="export pass")
    assert mode(archive) == 0o600 and not on_disk(encode_png(samples[0].crop), archive.read_bytes())
    with Store(tmp_path / "other.db") as other:
        with pytest.raises(GalleryKeyError, match="wrong passphrase"):
            import_gallery(other, archive, passphrase="nope")
        with pytest.raises(GalleryKeyError, match="give its passphrase"):
            import_gallery(other, archive)
        damaged = bytearray(archive.read_bytes())
        damaged[-100] ^= 1
        (tmp_path / "bad.faceapp").write_bytes(bytes(damaged))
        with pytest.raises(TamperedDataError):
            import_gallery(other, tmp_path / "bad.faceapp", passphrase="export pass")
        (tmp_path / "cut.faceapp").write_bytes(archive.read_bytes()[:-50])
        with pytest.raises(TamperedDataError):
            import_gallery(other, tmp_path / "cut.faceapp", passphrase="export pass")
        assert other.identities.count() == 0                  # nothing half-imported
        assert import_gallery(other, archive, passphrase="export pass")["templates"] == 2
        assert [c.png for c in other.templates.crops("Ada")] == [encode_png(s.crop) for s in samples]
        assert other.vault.cipher.gallery_id != store.vault.cipher.gallery_id   # re-sealed with the new gallery's key


def test_deleted_person_leaves_no_bytes_in_the_file_wal_or_backups(tmp_path: Path, make_samples, model) -> None:
    """The erasure evidence: after deleting Ada, none of her crops' or templates' clear bytes or ciphertexts
    is anywhere in the database file, its WAL, its SHM, a backup taken *before* the deletion (FaceApp replays
    the deletion there) or one taken afterwards; Bob's ciphertext (the positive control) is found by the same
    search in all of them. A recorded backup that was moved away is reported, not silently skipped."""
    path = tmp_path / "g.db"
    with Store(path) as store:
        ada = make_samples(3, seed=1)
        store.templates.enroll(NewIdentity("Ada"), ada, model)
        store.templates.enroll(NewIdentity("Bob"), make_samples(2, seed=2), model)
        sealed = {table: stored(path, table, column) for table, column in (("crops", "png"), ("templates", "embedding"))}
        ada_bytes = sealed["crops"][:3] + sealed["templates"][:3] + [encode_png(s.crop) for s in ada] + [
            s.embedding.astype("<f4").tobytes() for s in ada]
        bob_bytes = sealed["crops"][3:] + sealed["templates"][3:]
        from faceapp.storage.engine import checkpoint_truncate

        checkpoint_truncate(store.engine)
        before = backup(store, tmp_path / "before.db")
        moved = backup(store, tmp_path / "moved.db")
        moved.rename(tmp_path / "elsewhere.db")
        assert all(on_disk(blob, raw(path)) and on_disk(blob, raw(before)) for blob in sealed["crops"][:3])
        report = store.identities.delete("Ada")             # the search finds her before: it works
        assert report.backups_erased == (str(before),) and report.backups_missing == (str(moved),)
        assert Path(f"{path}-wal").stat().st_size == 0 if Path(f"{path}-wal").exists() else True
        after = raw(path)
        copy = raw(backup(store, tmp_path / "after.db"))
    earlier = raw(before)
    found = [i for i, blob in enumerate(ada_bytes) if on_disk(blob, after) or on_disk(blob, copy) or on_disk(blob, earlier)]
    assert found == [], f"deleted bytes still on disk: items {found}"
    assert all(on_disk(blob, raw(path)) and on_disk(blob, earlier) for blob in bob_bytes)
    assert all(on_disk(blob, raw(tmp_path / "elsewhere.db")) for blob in sealed["crops"][:3])   # out of reach: reported
    with Store(before) as restored:                      # the erased backup is still a working gallery
        assert [i.name for i in restored.identities.list()] == ["Bob"] and len(restored.templates.crops("Bob")) == 2
        assert check(restored).ok


def test_an_erasure_interrupted_before_the_backups_is_caught_up(tmp_path: Path, make_samples, model,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies after the deletion committed but before it reached the backups: the deletion stays
    queued in the gallery, `db check` says so, and the next deletion replays both."""
    from faceapp.storage import identities
    from faceapp.storage.backups import BackupErasure, replay_pending

    path = tmp_path / "g.db"
    with Store(path) as store:
        store.templates.enroll(NewIdentity("Ada"), make_samples(2, seed=1), model)
        store.templates.enroll(NewIdentity("Bob"), make_samples(2, seed=2), model)
        store.templates.enroll(NewIdentity("Cy"), make_samples(2, seed=3), model)
        sealed = stored(path, "crops", "png")
        before = backup(store, tmp_path / "before.db")
        monkeypatch.setattr(identities, "replay_pending", lambda uow: BackupErasure())     # "killed" here
        store.identities.delete("Ada")
        assert on_disk(sealed[0], raw(before)) and check(store).pending_erasures == 1
        assert any("pending erasures: 1" in problem for problem in check(store).problems)
        monkeypatch.setattr(identities, "replay_pending", replay_pending)
        report = store.identities.delete("Bob")
        assert report.backups_erased == (str(before),) and check(store).pending_erasures == 0
    assert not any(on_disk(blob, raw(before)) for blob in sealed[:4]) and on_disk(sealed[4], raw(before))


def test_deleting_one_sample_reaches_the_backups(tmp_path: Path, make_samples, model) -> None:
    path = tmp_path / "g.db"
    with Store(path) as store:
        store.templates.enroll(NewIdentity("Ada"), make_samples(2, seed=1), model)
        sealed = stored(path, "crops", "png")
        before = backup(store, tmp_path / "before.db")
        first = store.templates.for_identity("Ada")[0]
        assert store.templates.delete_sample(first.id) == 1
    assert not on_disk(sealed[0], raw(before)) and on_disk(sealed[1], raw(before))


def test_files_and_folders_are_private(tmp_path: Path, make_samples, model) -> None:
    os.umask(0o022)
    keys = KeyOptions(key_dir=tmp_path / "cfg" / "keys", use_keyring=False)
    path = tmp_path / "g.db"
    with Store(path, keys=keys) as store:
        store.templates.enroll(NewIdentity("Ada"), make_samples(1), model)
        assert {name: mode(Path(f"{path}{name}")) for name in ("", "-wal", "-shm")} == \
            {"": 0o600, "-wal": 0o600, "-shm": 0o600}
        assert mode(backup(store, tmp_path / "b.db")) == 0o600
        assert mode(Path(export_gallery(store, tmp_path / "e.zip")["path"])) == 0o600
    assert mode(tmp_path / "cfg" / "keys") == 0o700
    assert {mode(p) for p in (tmp_path / "cfg" / "keys").iterdir()} == {0o600}
    loose = tmp_path / "loose.db"                                # a gallery made world-readable by an older FaceApp
    loose.touch(mode=0o644)
    Store(loose, keys=keys).close()
    assert mode(loose) == 0o600
