"""The identity store on a real PostgreSQL 16 server (started from the ``pgserver`` wheel in a temporary
folder): the Alembic schema, enrolment, deletion without orphans, thresholds, audit, two workstations
sharing one gallery, and clear errors for a server that cannot be reached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from faceapp.cli.main import main as cli_main
from faceapp.core.errors import DatabaseError, ExitCode
from faceapp.services.gallery import Gallery
from faceapp.storage import AuditEntry, ModelSpec, NewIdentity, Store
from faceapp.storage.maintenance import consistency_counts

DIM = 16
MODEL = ModelSpec(model_id="tiny@000000000001", name="tiny", embedding_dim=DIM, sha256="0" * 64)


def test_schema_is_created_by_the_migrations(url: str) -> None:
    with Store(url) as store:
        assert not store.is_sqlite and store.upgraded and store.schema_status().up_to_date
        with store.engine.connect() as connection:
            tables = set(connection.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")).scalars())
        assert {"identities", "templates", "crops", "models", "thresholds", "audit_events", "alembic_version"} <= tables
    with Store(url) as again:                      # a second start finds it current
        assert not again.upgraded


def test_enrol_delete_thresholds_audit(url: str, make_samples) -> None:
    with Store(url) as store:
        alice = store.templates.enroll(NewIdentity("Alice", external_id="E-1"), make_samples(3), MODEL).identity
        store.templates.enroll(NewIdentity("Bob"), make_samples(2, seed=5), MODEL)
        assert [i.name for i in store.identities.list()] == ["Alice", "Bob"]
        assert store.identities.get("Alice").template_count == 3
        crops = store.templates.crops(alice.id)
        assert len(crops) == 3 and (crops[0].width, crops[0].height) == (112, 112) and crops[0].png[:4] == b"\x89PNG"
        store.thresholds.set(MODEL, verify=0.41, identify=0.52, target_far=1e-3, source="test")
        assert (store.thresholds.get(MODEL.model_id).verify, store.thresholds.get(MODEL.model_id).identify) == (0.41, 0.52)
        store.audit.append(AuditEntry("verify", identity_id=alice.id, identity_name="Alice", score=0.9))
        report = store.identities.delete("Alice", operator="op")
        assert (report.templates, report.crops) == (3, 3)
        assert set(store.uow.read(consistency_counts).values()) == {0}          # no orphans
        with store.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM templates")).scalar() == 2
            assert connection.execute(text("SELECT count(*) FROM crops")).scalar() == 2
        event = store.audit.query(operation="verify")[0]
        assert event.identity_id is None and event.identity_name == "Alice"


def test_two_workstations_share_one_gallery(url: str, make_samples) -> None:
    samples = make_samples(4, seed=3)
    with Store(url) as desk_a, Store(url) as desk_b:
        gallery_b = Gallery(desk_b, MODEL, operator="b")
        assert gallery_b.index.template_ids.size == 0
        desk_a.templates.enroll(NewIdentity("Carol"), samples, MODEL)           # enrolled at desk A...
        decision = gallery_b.identify(samples[0].embedding)                     # ...identified at desk B
        assert not decision.is_unknown and decision.best.name == "Carol" and decision.best.score > 0.99
        desk_a.identities.delete("Carol")
        assert gallery_b.identify(samples[0].embedding).is_unknown                # the deletion reaches B too
        assert [e.operation for e in desk_a.audit.query()].count("identify") == 2


def test_cli_uses_the_server(url: str, tmp_path: Path, capsys, make_samples) -> None:
    with Store(url) as store:
        store.templates.enroll(NewIdentity("Dave"), make_samples(2), MODEL)
    assert cli_main(["identities", "list", "--db", url, "--json"]) == 0
    assert '"Dave"' in capsys.readouterr().out
    code = cli_main(["db", "backup", str(tmp_path / "copy.db"), "--db", url])
    assert code == int(ExitCode.DATABASE)                                      # SQLite's backup API only
    assert "SQLite" in capsys.readouterr().err


def test_unreachable_server_is_a_clear_database_error(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://faceapp:secret@/gallery?host={tmp_path}"    # no server on that socket
    with pytest.raises(DatabaseError) as info:
        Store(url)
    message = str(info.value)
    assert "gallery" in message and "secret" not in message                  # names the database, hides the password
    assert cli_main(["identities", "list", "--db", url]) == int(ExitCode.DATABASE)


def test_server_holds_only_ciphertext_of_crops_and_templates(url: str, make_samples) -> None:
    """The same client-side encryption as SQLite: what the server stores (read with plain SQL) is neither the
    PNG nor the float32 template; FaceApp opens it again, and a changed byte on the server is refused."""
    from faceapp.core.errors import TamperedDataError
    from faceapp.storage.codec import encode_png
    from faceapp.storage.maintenance import check

    samples = make_samples(2, seed=7)
    with Store(url) as store:
        store.templates.enroll(NewIdentity("Erin"), samples, MODEL)
        assert store.encrypted
        with store.engine.connect() as connection:
            crops = [bytes(r[0]) for r in connection.execute(text("SELECT png FROM crops ORDER BY id"))]
            templates = [bytes(r[0]) for r in connection.execute(text("SELECT embedding FROM templates ORDER BY id"))]
            versions = connection.execute(text("SELECT DISTINCT key_version FROM templates")).scalars().all()
        clear_pngs = [encode_png(s.crop) for s in samples]
        clear_vectors = [s.embedding.astype("<f4").tobytes() for s in samples]
        assert versions == [1] and len(crops) == len(templates) == 2
        for blob, png in zip(crops, clear_pngs):
            assert b"\x89PNG" not in blob and png[64:96] not in blob and len(blob) == len(png) + 28
        for blob, vector in zip(templates, clear_vectors):
            assert vector[:16] not in blob and len(blob) == 4 * DIM + 28
        assert [c.png for c in store.templates.crops("Erin")] == clear_pngs             # decrypts round-trip
        rows = store.templates.gallery_rows(MODEL.model_id, DIM)
        np.testing.assert_array_equal(rows.embeddings, np.stack([s.embedding for s in samples]))
        report = check(store)
        assert report.ok and report.encryption["templates_sealed"] == 2 and report.encryption["crops_clear"] == 0
        with store.engine.begin() as connection:                                        # one bit changed server-side
            changed = bytearray(templates[0])
            changed[20] ^= 1
            connection.execute(text("UPDATE templates SET embedding = :b WHERE id = (SELECT min(id) FROM templates)"),
                               {"b": bytes(changed)})
        with pytest.raises(TamperedDataError, match="template .* failed authentication"):
            store.templates.gallery_rows(MODEL.model_id, DIM)
