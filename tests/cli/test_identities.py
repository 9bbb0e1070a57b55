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
    code, data, _ = run("enroll", "Bob", str(att / "s2"), str(not_image))       # a folder + a bad file
    assert code == 0 and data["templates_added"] == 10
    assert [r["source"] for r in data["rejected"]] == [str(not_image)]

    code, _, err = run("enroll", "Alice", str(att / "s1" / "4.pgm"))
    assert code == ExitCode.USAGE and "--add" in err
    code, data, _ = run("enroll", "Alice", str(att / "s1" / "4.pgm"), "--add")
    assert code == 0 and not data["created"] and data["identity"]["templates"] == 4
    code, _, err = run("enroll", "Ghost", str(not_image))
    assert code == ExitCode.QUALITY and "readme.jpg" in err

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

    code, data, _ = run("identify", str(att / "s2" / "2.pgm"), "--top-k", "2")
    assert code == 0 and data["name"] == "Bob" and not data["unknown"]
    assert [c["name"] for c in data["candidates"]] == ["Bob", "Alice"]
    code, data, _ = run("identify", str(att / "s2" / "3.pgm"), "--threshold", "1.0", "--strict")
    assert code == ExitCode.NO_MATCH and data["unknown"] and data["name"] is None
    code, text, _ = run("identify", str(att / "s2" / "3.pgm"), "--threshold", "1.0", as_json=False)
    assert text.startswith("UNKNOWN: best 'Bob'")
    code, _, err = run("identify", str(att / "missing.pgm"))
    assert code == ExitCode.INPUT_FILE and "missing.pgm" in err

    code, events, _ = run("audit", model=False)
    decisions = [(e["operation"], e["decision"]) for e in events if e["operation"] in ("verify", "identify")]
    assert decisions == [("verify", "match"), ("verify", "no-match"), ("verify", "match"),
                         ("identify", "identified"), ("identify", "unknown"), ("identify", "unknown")]
    assert events[2]["operator"] == "desk-2" and events[2]["details"]["probe"].endswith("1.pgm")
    code, events, _ = run("audit", "--operation", "identify", "--since", "1h", "--limit", "1", model=False)
    assert len(events) == 1 and events[0]["decision"] == "unknown"
    code, events, _ = run("audit", "--since", "2999-01-01", model=False)
    assert events == []
    code, _, err = run("audit", "--since", "yesterday-ish", model=False)
    assert code == ExitCode.USAGE and "--since" in err


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
    assert code == ExitCode.DATABASE and not data["ok"]
    read_only = f"sqlite:///file:{tmp_path / 'ro.db'}?mode=ro&uri=true"
    main(["db", "upgrade", "--db", str(tmp_path / "ro.db")])
    code, data, _ = run("identities", "list", "--db", read_only, model=False, db_arg=False)
    assert code == 0 and data == []                                # reading works on a read-only file
    code, _, err = run("thresholds", "set", "--verify", "0.4", "--db", read_only, db_arg=False)
    assert code == ExitCode.DATABASE and "read-only" in err and "ro.db" in err
    code, _, err = run("db", "backup", str(tmp_path / "b.db"), "--db", "postgresql+nosuchdriver://h/db",
                       model=False, db_arg=False)
    assert code == ExitCode.DATABASE and "cannot use database" in err
