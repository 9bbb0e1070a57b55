"""The gallery commands end to end through ``faceapp.cli.main.main`` (in-process) on real AT&T photos,
the real MediaPipe pipeline, a small saved model folder and real SQLite files: enroll, identities,
verify, identify, audit, db, thresholds and gallery export/import, with exit codes and JSON."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import torch

from faceapp.cli.main import main
from faceapp.core.errors import ExitCode
from faceapp.embedding.model_folder import ModelConfig, save_model
from faceapp.nn.backbones import create_backbone


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two small saved model folders (tiny backbone, 32 and 24 values; untrained, so labelled as such)."""
    folders = []
    for seed, dim in ((0, 32), (1, 24)):
        torch.manual_seed(seed)
        net = create_backbone("tiny", embedding_dim=dim).eval()
        config = ModelConfig(name=f"cli-tiny{dim}", backbone="tiny", embedding_dim=dim)
        folders.append(save_model(tmp_path_factory.mktemp("models") / config.name, net, config, {"trained": False}))
    return folders[0], folders[1]


@pytest.fixture
def run(tmp_path: Path, model_dirs, mediapipe_models: Path, capsys: pytest.CaptureFixture):
    """``run(*argv, json=True, model=True)`` -> (exit code, parsed JSON or stdout text, stderr)."""
    db = tmp_path / "cli.db"

    def invoke(*argv: str, as_json: bool = True, model: Path | None | bool = True, db_arg: bool = True):
        args = list(argv)
        if db_arg:
            args += ["--db", str(db)]
        if model is True:
            args += ["--model", str(model_dirs[0])]
        elif model:
            args += ["--model", str(model)]
        if as_json:
            args.append("--json")
        if args[0] in ("enroll", "verify", "identify"):
            args += ["--mediapipe-dir", str(mediapipe_models)]
        capsys.readouterr()
        code = main(args)
        out, err = capsys.readouterr()
        return code, (json.loads(out) if as_json and out.strip() else out), err

    invoke.db = db
    return invoke


def test_enroll_list_show_rename_delete(run, att: Path, tmp_path: Path) -> None:
    code, data, err = run("enroll", "Alice", *(str(att / "s1" / f"{i}.pgm") for i in (1, 2, 3)),
                          "--external-id", "A-1", "--consent", "--operator", "desk-1")
    assert code == 0, err
    assert data["created"] and data["templates_added"] == 3 and data["model"]["trained"] is False
    assert data["identity"]["external_id"] == "A-1" and data["identity"]["consent_at"]
    assert "UNTRAINED" in err
    not_image = tmp_path / "readme.jpg"
    not_image.write_text("text")
    code, data, err = run("enroll", "Bob", str(att / "s2"), str(not_image))     # a folder + a bad file
    assert code == ExitCode.INPUT_FILE and data["templates_added"] == 10 and "readme.jpg" in err   # saved, reported
    assert [r["source"] for r in data["rejected"]] == [str(not_image)]

    code, _, err = run("enroll", "Alice", str(att / "s1" / "4.pgm"))
    assert code == ExitCode.USAGE and "--add" in err
    code, data, _ = run("enroll", "Alice", str(att / "s1" / "4.pgm"), "--add")
    assert code == 0 and not data["created"] and data["identity"]["templates"] == 4
    code, _, err = run("enroll", "Ghost", str(not_image))
    assert code == ExitCode.INPUT_FILE and "readme.jpg" in err                  # as detect and embed

    code, data, _ = run("identities", "list", model=False)
    assert [(i["name"], i["templates"]) for i in data] == [("Alice", 4), ("Bob", 10)]
    code, text, _ = run("identities", "list", "--search", "bo", model=False, as_json=False)
    assert "Bob" in text and "Alice" not in text
    crops_dir = tmp_path / "crops"
    code, data, err = run("identities", "show", "Alice", "--crops-dir", str(crops_dir), model=False)
    assert code == 0 and len(data["template_list"]) == 4 and len(list(crops_dir.glob("*.png"))) == 4
    assert f"{crops_dir} now holds face images in clear" in err
    run("identities", "show", "Bob", "--crops-dir", str(crops_dir), model=False)
    assert len(list(crops_dir.glob("*.png"))) == 14 and {p.stat().st_mode & 0o777 for p in crops_dir.iterdir()} == {0o600}
    assert crops_dir.stat().st_mode & 0o777 == 0o700
    code, data, _ = run("identities", "rename", "Alice", "Alicia", model=False)
    assert data["name"] == "Alicia"
    code, _, err = run("identities", "delete", "Bob", model=False)           # stdin is not a terminal here
    assert code == ExitCode.USAGE and "--yes" in err
    code, data, _ = run("identities", "delete", "Bob", "--yes", model=False)
    assert (data["templates"], data["crops"]) == (10, 10)
    assert data["backups_erased"] == [str(crops_dir)] and len(list(crops_dir.glob("*.png"))) == 4   # Bob's exported crops went too
    code, _, err = run("identities", "show", "Bob", model=False)
    assert code == ExitCode.NOT_FOUND and "Bob" in err
    with sqlite3.connect(run.db) as raw:
        assert raw.execute("SELECT count(*) FROM templates t LEFT JOIN identities i ON i.id = t.identity_id "
                           "WHERE i.id IS NULL").fetchone()[0] == 0


def test_verify_identify_and_audit(run, att: Path) -> None:
    run("enroll", "Alice", *(str(att / "s1" / f"{i}.pgm") for i in (1, 2)))
    run("enroll", "Bob", *(str(att / "s2" / f"{i}.pgm") for i in (1, 2)))
    code, data, _ = run("verify", "Alice", str(att / "s1" / "1.pgm"), "--operator", "desk-2")
    assert code == 0 and data["match"] and data["score"] == pytest.approx(1.0, abs=1e-4)   # an enrolled photo
    assert data["thresholds_source"] == "default" and data["policy"] == "max"
    code, data, _ = run("verify", "Alice", str(att / "s1" / "3.pgm"), "--threshold", "1.0", "--strict",
                        "--policy", "centroid")
    assert code == ExitCode.NO_MATCH and not data["match"] and data["thresholds_source"] == "command-line"
    code, text, _ = run("verify", "Alice", str(att / "s1" / "3.pgm"), "--threshold", "-1", as_json=False)
    assert code == 0 and text.startswith("MATCH")
    code, _, err = run("verify", "Carol", str(att / "s1" / "3.pgm"))
    assert code == ExitCode.NOT_FOUND and "Carol" in err

    code, data, _ = run("identify", str(att / "s2" / "2.pgm"), "--top-k", "2", "--ambiguity-margin", "0")
    assert code == 0 and data["name"] == "Bob" and not data["unknown"]      # (untrained: Alice may be close)
    assert [c["name"] for c in data["candidates"]] == ["Bob", "Alice"]
    code, data, _ = run("identify", str(att / "s2" / "3.pgm"), "--threshold", "1.0", "--strict")
    assert code == ExitCode.NO_MATCH and data["unknown"] and data["name"] is None
    code, text, _ = run("identify", str(att / "s2" / "3.pgm"), "--threshold", "1.0", as_json=False)
    assert text.startswith("UNKNOWN: best 'Bob'")
    code, _, err = run("identify", str(att / "missing.pgm"))
    assert code == ExitCode.INPUT_FILE and "missing.pgm" in err

    code, events, _ = run("audit", model=False)
    decisions = [(e["operation"], e["decision"]) for e in events if e["operation"] in ("verify", "identify")]
    assert decisions == [("verify", "match"), ("verify", "no-match"), ("verify", "match"), ("verify", "failed"),
                         ("identify", "identified"), ("identify", "unknown"), ("identify", "unknown"),
                         ("identify", "failed")]                      # failed attempts are audited too
    assert events[2]["operator"] == "desk-2" and events[2]["details"]["probe"].endswith("1.pgm")
    code, events, _ = run("audit", "--operation", "identify", "--since", "1h", "--limit", "2", model=False)
    assert [e["decision"] for e in events] == ["unknown", "failed"]
    code, events, _ = run("audit", "--since", "2999-01-01", model=False)
    assert events == []
    code, _, err = run("audit", "--since", "yesterday-ish", model=False)
    assert code == ExitCode.USAGE and "--since" in err

    # ambiguous: the top two within --ambiguity-margin name nobody (the matcher's decision, audited as such)
    code, data, _ = run("identify", str(att / "s2" / "2.pgm"), "--top-k", "1", "--ambiguity-margin", "0")
    assert data["decision"] == "identified" and len(data["candidates"]) == 1     # no margin: top_k as asked
    code, data, _ = run("identify", str(att / "s2" / "2.pgm"), "--top-k", "1")
    gap = data["candidates"][0]["score"] - data["candidates"][1]["score"]        # the runner-up is kept for it
    assert data["ambiguity_margin"] == 0.03 and data["ambiguous"] == (gap < 0.03)
    code, data, _ = run("identify", str(att / "s2" / "2.pgm"), "--ambiguity-margin", f"{gap + 0.001:.6f}",
                        "--strict")
    assert code == ExitCode.NO_MATCH and data["decision"] == "ambiguous" and data["ambiguous"]
    assert data["name"] is None and data["identity_id"] is None and not data["unknown"]
    code, text, _ = run("identify", str(att / "s2" / "2.pgm"), "--ambiguity-margin", f"{gap + 0.001:.6f}",
                        as_json=False)
    assert code == 0 and text.startswith("AMBIGUOUS: 'Bob'") and "'Alice'" in text
    code, events, _ = run("audit", "--operation", "identify", "--limit", "1", model=False)
    assert events[0]["decision"] == "ambiguous" and events[0]["identity_name"] is None
    assert events[0]["details"]["ambiguity_margin"] == pytest.approx(gap + 0.001, abs=1e-6)
    code, _, err = run("identify", str(att / "s2" / "2.pgm"), "--ambiguity-margin", "1.5")
    assert code == ExitCode.USAGE and "--ambiguity-margin" in err


def test_db_thresholds_reembed_and_gallery_transfer(run, att: Path, model_dirs, tmp_path: Path) -> None:
    run("enroll", "Alice", *(str(att / "s1" / f"{i}.pgm") for i in (1, 2)))
    code, data, _ = run("db", "upgrade", model=False)
    assert code == 0 and not data["upgraded"] and data["to"] == "0004"
    code, data, _ = run("db", "check", model=False)
    assert code == 0 and data["ok"] and data["identities"] == 1
    code, data, _ = run("db", "backup", str(tmp_path / "copy.db"), model=False)
    assert code == 0 and Path(data["backup"]).stat().st_size > 0

    code, data, _ = run("thresholds", "show")
    assert data["source"] == "default"
    code, data, _ = run("thresholds", "set", "--verify", "0.3", "--identify", "0.35", "--target-far", "0.001",
                        "--source", "cfp-calibration")
    assert code == 0 and data["verify"] == 0.3
    code, data, _ = run("thresholds", "show")
    assert (data["verify"], data["identify"], data["source"]) == (0.3, 0.35, "store:cfp-calibration")
    code, _, err = run("thresholds", "set", "--verify", "3")
    assert code == ExitCode.USAGE and "verify" in err

    code, data, err = run("identify", str(att / "s1" / "3.pgm"), model=model_dirs[1])   # new model, no templates
    assert code == 0 and data["unknown"] and data["candidates"] == [] and "faceapp db reembed" in err
    code, data, _ = run("db", "reembed", model=model_dirs[1])
    assert code == 0 and data["embedded"] == 2 and data["remaining"] == 0
    code, data, _ = run("identify", str(att / "s1" / "1.pgm"), model=model_dirs[1])
    assert data["candidates"][0]["name"] == "Alice"

    code, data, _ = run("gallery", "export", str(tmp_path / "g.zip"), "--plaintext", model=False)
    assert code == 0 and (data["identities"], data["crops"], data["templates"]) == (1, 2, 4)
    other_db = tmp_path / "other.db"
    code, data, _ = run("gallery", "import", str(tmp_path / "g.zip"), "--db", str(other_db), model=False, db_arg=False)
    assert code == 0 and data["templates"] == 4
    code, data, _ = run("gallery", "import", str(tmp_path / "g.zip"), "--db", str(other_db), model=False, db_arg=False)
    assert code == ExitCode.USAGE


def test_database_problems_exit_with_the_database_code(run, tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    main(["db", "upgrade", "--db", str(newer)])
    with sqlite3.connect(newer) as raw:
        raw.execute("UPDATE alembic_version SET version_num = '0999'")
    code, _, err = run("identities", "list", "--db", str(newer), model=False, db_arg=False)
    assert code == ExitCode.DATABASE and "newer than this FaceApp" in err and str(newer) in err
    code, data, _ = run("db", "check", "--db", str(newer), model=False, db_arg=False)
    assert code == ExitCode.DATABASE and not data["ok"] and data["newer"]
    assert "newer FaceApp" in data["problems"][0] and "(run `faceapp db upgrade`)" not in data["problems"][0]
    read_only = f"sqlite:///file:{tmp_path / 'ro.db'}?mode=ro&uri=true"
    main(["db", "upgrade", "--db", str(tmp_path / "ro.db")])
    code, data, _ = run("identities", "list", "--db", read_only, model=False, db_arg=False)
    assert code == 0 and data == []                                # reading works on a read-only file
    code, _, err = run("thresholds", "set", "--verify", "0.4", "--db", read_only, db_arg=False)
    assert code == ExitCode.DATABASE and "read-only" in err and "ro.db" in err
    code, _, err = run("db", "backup", str(tmp_path / "b.db"), "--db", "postgresql+nosuchdriver://h/db",
                       model=False, db_arg=False)
    assert code == ExitCode.DATABASE and "cannot use database" in err


# ------------------------------------------------------------------------- hostile files in batches (issue 15)
def _bad_files(folder: Path) -> list[Path]:
    """A PGM with a bad size in its header, one cut inside its header, a PNG whose zTXt inflates past Pillow's limit."""
    import struct
    import zlib

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bad_size.pgm").write_bytes(b"P5\n92 1x\n255\n")
    (folder / "cut.pgm").write_bytes(b"P5\n9")

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    bomb = b"Comment\x00\x00" + zlib.compress(b"\x00" * (8 << 20), 9)
    (folder / "ztxt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
                                      + chunk(b"zTXt", bomb) + chunk(b"IDAT", zlib.compress(b"\x00" * 72))
                                      + chunk(b"IEND", b""))
    return [folder / "bad_size.pgm", folder / "cut.pgm", folder / "ztxt.png"]


def test_the_same_bad_file_gives_the_same_exit_code_in_detect_embed_and_enroll(run, tmp_path: Path) -> None:
    for bad in _bad_files(tmp_path / "bad"):
        code, _, err = run("detect", str(bad), model=False, db_arg=False)
        assert code == ExitCode.INPUT_FILE and str(bad) in err and "Traceback" not in err, err
        code, _, err = run("embed", str(bad), "-o", str(tmp_path / "e.npz"), db_arg=False)
        assert code == ExitCode.INPUT_FILE and str(bad) in err, err
        code, _, err = run("enroll", "Ghost", str(bad))
        assert code == ExitCode.INPUT_FILE and str(bad) in err, err


def test_one_bad_file_does_not_abort_a_folder(run, att: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    bad = _bad_files(folder)
    for i in (1, 2, 3):
        (folder / f"{i}.pgm").write_bytes((att / "s3" / f"{i}.pgm").read_bytes())
    code, data, err = run("detect", str(folder), model=False, db_arg=False)
    assert code == ExitCode.INPUT_FILE
    assert sorted(Path(i["path"]).name for i in data["images"] if i["faces"]) == ["1.pgm", "2.pgm", "3.pgm"]
    assert all(str(b) in err for b in bad), err
    code, data, err = run("embed", str(folder), "-o", str(tmp_path / "e.npz"), db_arg=False)
    assert code == ExitCode.INPUT_FILE and data["embedded"] == 3 and all(str(b) in err for b in bad), err
    code, data, err = run("enroll", "Carol", str(folder))
    assert code == ExitCode.INPUT_FILE and data["templates_added"] == 3, err
    assert sorted(r["source"] for r in data["rejected"]) == sorted(str(b) for b in bad)
    assert all(str(b) in err for b in bad), err


def test_enrolling_a_photo_with_several_faces_exits_with_the_several_faces_code(run, celeba: Path,
                                                                               tmp_path: Path) -> None:
    import cv2

    from faceapp.capture.images import read_image
    from tests.capture.composed import side_by_side

    paths = sorted(celeba.glob("*/*.jpg"))
    group = tmp_path / "two.png"
    cv2.imwrite(str(group), side_by_side([read_image(paths[0]), read_image(paths[40])], [200, 300]))
    code, _, err = run("enroll", "Pair", str(group))
    assert code == ExitCode.SEVERAL_FACES and "2 faces" in err, err


# ---------------------------------------------------------------------- audit of every attempt, names shown safely
def test_failed_attempts_are_audited_with_the_default_operator(run, att: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    monkeypatch.delenv("FACEAPP_OPERATOR", raising=False)
    login = getpass.getuser()
    run("enroll", "Alice", str(att / "s1" / "1.pgm"))
    wall = tmp_path / "wall.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(wall), np.full((240, 320, 3), 128, np.uint8))
    unreadable = tmp_path / "cut.pgm"
    unreadable.write_bytes(b"P5\n9")
    code, _, _ = run("verify", "Nobody", str(att / "s1" / "2.pgm"))
    assert code == ExitCode.NOT_FOUND
    code, _, _ = run("identify", str(wall))
    assert code == ExitCode.NO_FACE
    code, _, _ = run("verify", "Alice", str(unreadable))
    assert code == ExitCode.INPUT_FILE
    code, events, _ = run("audit", model=False)
    failed = [(e["operation"], e["identity_name"], e["details"]["exit_code"], e["operator"])
              for e in events if e["decision"] == "failed"]
    assert failed == [("verify", "Nobody", "not_found", login), ("identify", None, "no_face", login),
                      ("verify", "Alice", "input_file", login)]
    run("identities", "rename", "Alice", "Alicia", model=False)
    run("identities", "delete", "Alicia", "--yes", model=False)
    code, events, _ = run("audit", model=False)
    assert {e["operation"]: e["operator"] for e in events if e["operation"] in ("rename", "delete")} == \
        {"rename": login, "delete": login}
    for operator, problem in (("  ", "operator name is empty"), ("desk\x1b[2J", "invisible")):
        with pytest.raises(SystemExit) as caught:                       # argparse: a usage error
            run("identities", "delete", "Nobody", "--yes", "--operator", operator, model=False)
        assert caught.value.code == ExitCode.USAGE


def test_names_are_normalised_refused_and_escaped_on_output(run, att: Path) -> None:
    import unicodedata

    code, _, err = run("enroll", "Ada\u200b", str(att / "s4" / "1.pgm"))
    assert code == ExitCode.USAGE and "U+200B" in err and "\u200b" not in err
    code, data, _ = run("enroll", unicodedata.normalize("NFD", "José"), str(att / "s4" / "1.pgm"))
    assert code == 0 and data["identity"]["name"] == unicodedata.normalize("NFC", "José")
    code, _, err = run("enroll", unicodedata.normalize("NFC", "José"), str(att / "s4" / "2.pgm"))
    assert code == ExitCode.USAGE and "already exists" in err
    code, _, err = run("identities", "rename", "José", "#1", model=False)
    assert code == ExitCode.USAGE and "id reference" in err
    code, text, _ = run("identities", "list", "--search", "%", model=False, as_json=False)
    assert text.strip() == "no identities"
    with sqlite3.connect(run.db) as raw:                 # a row written before names were checked
        raw.execute("UPDATE identities SET name = ? WHERE id = 1", ("\x1b[2J\x1b[31mEvil",))
        raw.execute("UPDATE audit_events SET operator = ?", ("op\x1b]0;pwned\x07",))
    code, text, _ = run("identities", "list", model=False, as_json=False)
    assert "\x1b" not in text and "\\x1b[2J\\x1b[31mEvil" in text
    code, text, _ = run("audit", model=False, as_json=False)
    assert "\x1b" not in text and "\x07" not in text and "op\\x1b]0;pwned\\x07" in text


def _rewrite_archive(source: Path, target: Path, change) -> Path:  # noqa: ANN001
    """A copy of the gallery zip ``source`` after ``change(manifest, contents)`` edited it in place."""
    import zipfile

    with zipfile.ZipFile(source) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(contents["manifest.json"])
    change(manifest, contents)
    contents["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return target


def test_gallery_import_of_a_crafted_archive_exits_3_with_the_field(run, att: Path, tmp_path: Path) -> None:
    run("enroll", "Alice", str(att / "s1" / "1.pgm"))
    run("gallery", "export", str(tmp_path / "g.zip"), "--plaintext", model=False)

    def lower_thresholds(manifest, contents) -> None:  # noqa: ANN001
        manifest["models"][0]["thresholds"] = {"verify": -5, "identify": -5}   # every face would match

    crafted = _rewrite_archive(tmp_path / "g.zip", tmp_path / "crafted.zip", lower_thresholds)
    code, _, err = run("gallery", "import", str(crafted), "--db", str(tmp_path / "other.db"), model=False, db_arg=False)
    assert code == ExitCode.INPUT_FILE and "models[0].thresholds.verify" in err and "nothing imported" in err, err


def test_an_empty_alembic_version_table_is_diagnosed(run, tmp_path: Path) -> None:
    unstamped = tmp_path / "unstamped.db"
    main(["db", "upgrade", "--db", str(unstamped)])
    with sqlite3.connect(unstamped) as raw:
        raw.execute("DELETE FROM alembic_version")
    for argv in (("db", "check"), ("db", "upgrade"), ("identities", "list")):
        code, _, err = run(*argv, "--db", str(unstamped), model=False, db_arg=False)
        assert code == ExitCode.DATABASE and "empty alembic_version" in err and "already exists" not in err, err
        assert str(unstamped) in err


# ------------------------------------------------------------------ one identity, several people (issue 15)
def test_enrolling_photos_of_different_people_as_one_is_refused(run, celeba: Path) -> None:
    trained = Path(__file__).resolve().parents[2] / "models" / "default"
    people = sorted(p for p in celeba.iterdir() if p.is_dir())[:6]
    strangers = [str(sorted(person.glob("*.jpg"))[0]) for person in people]        # six different people
    code, _, err = run("enroll", "Mixed", *strangers, model=trained)
    assert code == ExitCode.QUALITY and "do not look like one person" in err and "--allow-different" in err, err
    assert all(Path(s).name in err for s in strangers[:2]), err
    code, data, _ = run("identities", "list", model=False)
    assert data == []                                                       # nothing written
    same = [str(p) for p in sorted(people[0].glob("*.jpg"))[:3]]
    code, data, err = run("enroll", "One", *same, model=trained)
    assert code == 0 and data["templates_added"] == 3, err
    code, data, err = run("enroll", "One", strangers[1], "--add", model=trained)          # a stranger added later
    assert code == ExitCode.QUALITY and "stored template" in err, err
    code, data, err = run("enroll", "Mixed", *strangers, "--allow-different", "--no-duplicate-check", model=trained)
    assert code == 0 and data["templates_added"] == 6, err


@pytest.mark.slow
def test_identify_answers_while_the_database_is_locked_and_audit_catches_up(run, att: Path) -> None:
    run("enroll", "Alice", str(att / "s1" / "1.pgm"), str(att / "s1" / "2.pgm"))
    other = sqlite3.connect(run.db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")                    # another program holds the write lock
    try:
        code, data, err = run("identify", str(att / "s1" / "1.pgm"))    # waits one busy timeout, then answers
        assert code == 0 and data["name"] == "Alice" and data["audit_queued"], err
        assert "queued durably" in err
    finally:
        other.rollback()
        other.close()
    code, events, _ = run("audit", model=False)         # the queue is written first, then listed
    assert [(e["operation"], e["decision"]) for e in events] == [("enroll", "created"), ("identify", "identified")]


def test_gallery_import_refuses_templates_of_another_size_under_the_active_models_id(run, att: Path,
                                                                                      tmp_path: Path) -> None:
    import io

    import numpy as np

    run("enroll", "Alice", str(att / "s1" / "1.pgm"))
    run("gallery", "export", str(tmp_path / "g.zip"), "--plaintext", model=False)

    def widen(manifest, contents) -> None:  # noqa: ANN001 - a 64-d model under the active (32-d) model's id
        model = manifest["models"][0]
        model["embedding_dim"] = 64
        buffer = io.BytesIO()
        np.save(buffer, np.full((len(model["templates"]), 64), 0.125, np.float32))
        contents[model["embeddings"]] = buffer.getvalue()

    crafted = _rewrite_archive(tmp_path / "g.zip", tmp_path / "crafted.zip", widen)
    fresh = tmp_path / "fresh.db"                             # knows no model yet: the active one is checked
    code, _, err = run("gallery", "import", str(crafted), "--db", str(fresh), db_arg=False)
    assert code == ExitCode.INCOMPATIBLE and "embedding_dim" in err and "32-value" in err, err


def test_identify_with_a_faiss_index_and_a_damaged_index_file(run, att: Path) -> None:
    """``--index faiss`` writes the index beside the database and answers as exact search does; a damaged file
    is named on stderr, rebuilt, and the answer is unchanged."""
    run("enroll", "Alice", *(str(att / "s1" / f"{i}.pgm") for i in (1, 2)))
    run("enroll", "Bob", *(str(att / "s2" / f"{i}.pgm") for i in (1, 2)))
    def ranked(data: dict) -> list[tuple[str, float]]:
        return [(c["name"], pytest.approx(c["score"], abs=1e-6)) for c in data["candidates"]]

    code, exact, _ = run("identify", str(att / "s2" / "3.pgm"), "--top-k", "2", "--index", "exact")
    code, approx, err = run("identify", str(att / "s2" / "3.pgm"), "--top-k", "2", "--index", "faiss")
    assert code == 0 and ranked(approx) == ranked(exact) and "index" not in err
    index_file = next((run.db.parent / "cli.db.index").glob("*.faiss"))
    index_file.write_bytes(index_file.read_bytes()[:-100])
    code, again, err = run("identify", str(att / "s2" / "3.pgm"), "--top-k", "2", "--index", "faiss")
    assert code == 0 and ranked(again) == ranked(exact)
    assert str(index_file) in err and "damaged" in err and "rebuilt" in err
    with pytest.raises(SystemExit) as usage:                                  # argparse: a usage error
        run("identify", str(att / "s2" / "3.pgm"), "--index", "annoy")
    assert usage.value.code == ExitCode.USAGE
