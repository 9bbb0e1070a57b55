"""``faceapp liveness`` / ``--liveness`` end to end on real NUAA photos, the real blink video and real SQLite:
JSON decision, exit codes, the audit log, bad input never passing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceapp.cli.main import main
from faceapp.core.errors import ExitCode
from faceapp.liveness.passive import PAD_MODELS


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture):
    db = tmp_path / "cli.db"

    def invoke(*argv: str):
        code = main([*argv, "--db", str(db), "--json"])
        out = capsys.readouterr().out
        return code, json.loads(out) if out.strip() else None

    invoke.db = db
    return invoke


def _audit(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute("select operation, decision, score, threshold from audit_events "
                           "where operation like 'liveness%' order by id").fetchall()


def test_live_photo_and_printed_photo(run, datasets: Path) -> None:  # noqa: ANN001
    live = sorted((datasets / "nuaa_pad/live/0007").glob("*.jpg"))[0]
    attack = sorted((datasets / "nuaa_pad/print_still/0007").glob("*.jpg"))[0]
    code, data = run("liveness", str(live))
    assert code == ExitCode.OK and data["state"] == "live" and data["passive"]["score"] >= data["threshold"]["value"]
    code, data = run("liveness", str(attack))
    assert code == ExitCode.ATTACK_SUSPECTED and data["state"] == "attack suspected"
    assert set(data["passive"]["per_model"]) == {s.name for s in PAD_MODELS}
    rows = _audit(run.db)
    assert [r[1] for r in rows] == ["live", "attack suspected"] and all(r[2] is not None for r in rows)


def test_corrupt_weights_give_not_checked_and_exit_5(run, datasets: Path, tmp_path: Path) -> None:  # noqa: ANN001
    pad = tmp_path / "pad"
    pad.mkdir()
    (pad / PAD_MODELS[0].filename).write_bytes(b"\0" * 100)
    live = sorted((datasets / "nuaa_pad/live/0007").glob("*.jpg"))[0]
    code, data = run("liveness", str(live), "--pad-model-dir", str(pad))
    assert code == ExitCode.MODEL_ASSET
    assert data["state"] == "not checked" and not data["live"] and "SHA-256" in data["reason"]
    assert _audit(run.db)[-1][1] == "not checked"


def test_no_face_and_several_faces(run, datasets: Path, tmp_path: Path) -> None:  # noqa: ANN001
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 128, np.uint8))
    code, data = run("liveness", str(blank))
    assert code == ExitCode.NO_FACE and data["state"] == "not checked"
    pair = tmp_path / "pair.png"
    a, b = (cv2.imread(str(sorted((datasets / f"nuaa_pad/live/{s}").glob("*.jpg"))[0])) for s in ("0001", "0004"))
    cv2.imwrite(str(pair), np.hstack([a, b]))
    code, data = run("liveness", str(pair))
    assert code == ExitCode.SEVERAL_FACES and data["state"] == "not checked"


def test_a_short_video_is_not_checked(run, datasets: Path, tmp_path: Path) -> None:  # noqa: ANN001
    source = cv2.VideoCapture(str(datasets / "blink_videos/mahie_test_1.avi"))
    clip = tmp_path / "short.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for _ in range(5):
        writer.write(source.read()[1])
    writer.release()
    code, data = run("liveness", str(clip))
    assert code == ExitCode.LIVENESS_NOT_CHECKED and data["state"] == "not checked" and "too short" in data["reason"]


def test_a_dark_video_is_not_checked(run, datasets: Path, tmp_path: Path) -> None:  # noqa: ANN001
    source = cv2.VideoCapture(str(datasets / "blink_videos/mahie_test_1.avi"))
    clip = tmp_path / "dark.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for _ in range(60):
        writer.write((source.read()[1] * 0.1).astype(np.uint8))
    writer.release()
    code, data = run("liveness", str(clip), "--mode", "challenge")
    assert data["state"] == "not checked" and "dark" in data["reason"]
    assert code == ExitCode.LIVENESS_NOT_CHECKED


def test_unreadable_input_is_an_input_error(run, tmp_path: Path) -> None:  # noqa: ANN001
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    assert run("liveness", str(bad))[0] == ExitCode.INPUT_FILE
    assert run("liveness", str(tmp_path / "missing.jpg"))[0] == ExitCode.INPUT_FILE


# ------------------------------------------------------------------------------ --liveness on verify / identify
def _details(db: Path, operation: str) -> list[tuple[str, dict]]:
    with sqlite3.connect(db) as con:
        rows = con.execute("select decision, details_json from audit_events where operation = ? order by id",
                           (operation,)).fetchall()
    return [(decision, json.loads(details or "{}")) for decision, details in rows]


@pytest.fixture
def enrolled(run, datasets: Path):  # noqa: ANN001, ANN201
    """Subject 0007 enrolled from three live NUAA photos; a fourth live photo and a printed one as probes."""
    live = sorted((datasets / "nuaa_pad/live/0007").glob("*.jpg"))
    code, _ = run("enroll", "p7", *(str(p) for p in live[0:30:10]))
    assert code == ExitCode.OK
    return {"live": str(live[35]), "attack": str(sorted((datasets / "nuaa_pad/print_still/0007").glob("*.jpg"))[0])}


@pytest.mark.slow
def test_verify_with_liveness_refuses_a_printed_photo_and_keeps_a_live_answer(run, enrolled) -> None:  # noqa: ANN001
    code, plain = run("verify", "p7", enrolled["live"])
    assert code == ExitCode.OK and "liveness" not in plain
    code, data = run("verify", "p7", enrolled["live"], "--liveness")
    assert code == ExitCode.OK                                   # the decision as before, now with liveness
    assert data["match"] == plain["match"] and data["score"] == pytest.approx(plain["score"], abs=1e-6)
    assert data["liveness"]["state"] == "live" and data["accepted"] == plain["match"]
    code, data = run("verify", "p7", enrolled["attack"], "--liveness")
    assert code == ExitCode.ATTACK_SUSPECTED == 17
    assert data["accepted"] is False and data["liveness"]["state"] == "attack suspected"
    liveness_rows = _details(run.db, "liveness")
    assert [d for d, _ in liveness_rows] == ["live", "attack suspected"]
    assert liveness_rows[-1][1]["for"] == "verify" and liveness_rows[-1][1]["claimed"] == "p7"
    verify_rows = _details(run.db, "verify")
    assert [d.get("liveness") for _, d in verify_rows] == [None, "live", "attack suspected"]
    decision, details = verify_rows[-1]                          # a printed face never audited as a MATCH
    assert decision == ("liveness-required" if data["match"] else "no-match"), (decision, data["match"])
    assert data["match"] is False or details["withheld"] == "liveness attack suspected"


@pytest.mark.slow
def test_identify_with_liveness_refuses_a_printed_photo_and_keeps_a_live_answer(run, enrolled) -> None:  # noqa: ANN001
    code, plain = run("identify", enrolled["live"])
    assert code == ExitCode.OK
    code, data = run("identify", enrolled["live"], "--liveness")
    assert code == ExitCode.OK and data["name"] == plain["name"] and data["unknown"] == plain["unknown"]
    assert data["liveness"]["state"] == "live" and data["accepted"] == (not plain["unknown"])
    code, data = run("identify", enrolled["attack"], "--liveness")
    assert code == ExitCode.ATTACK_SUSPECTED
    assert data["accepted"] is False and data["liveness"]["state"] == "attack suspected"
    assert [d for d, _ in _details(run.db, "liveness")] == ["live", "attack suspected"]
    identify_rows = _details(run.db, "identify")
    assert [d.get("liveness") for _, d in identify_rows] == [None, "live", "attack suspected"]
    assert identify_rows[-1][0] == ("liveness-required" if data["identity_id"] is not None else "unknown")


@pytest.mark.slow
def test_with_broken_pad_weights_a_live_match_is_not_accepted(run, enrolled, tmp_path: Path) -> None:  # noqa: ANN001
    pad = tmp_path / "pad"
    pad.mkdir()
    (pad / PAD_MODELS[0].filename).write_bytes(b"\0" * 100)    # found first, refused (SHA-256)
    code, data = run("verify", "p7", enrolled["live"], "--liveness", "--pad-model-dir", str(pad))
    assert code == ExitCode.MODEL_ASSET
    assert data["accepted"] is False and data["liveness"]["state"] == "not checked"


@pytest.mark.slow
def test_identify_with_liveness_answers_while_the_database_is_locked(run, enrolled) -> None:  # noqa: ANN001
    """The liveness entry is queued like the decision (it raised 'locked' before, after the decision was queued)."""
    other = sqlite3.connect(run.db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")                      # another program holds the write lock
    try:
        code, data = run("identify", enrolled["live"], "--liveness")
        assert code == ExitCode.OK and data["name"] == "p7" and data["audit_queued"]
        assert data["liveness"]["state"] == "live" and data["accepted"] is True
    finally:
        other.rollback()
        other.close()
    code, _ = run("audit")                                 # flushes the queue first
    assert [d for d, _ in _details(run.db, "liveness")] == ["live"]
    assert [d.get("liveness") for _, d in _details(run.db, "identify")] == ["live"]


def test_liveness_help_texts_give_the_exit_codes_the_commands_return(capsys: pytest.CaptureFixture) -> None:
    """The exit codes were renumbered when liveness met encryption (15/16 are the gallery key / tampering):
    the help must say 17 / 18, never the old numbers."""
    import re

    for argv in (["liveness", "--help"], ["verify", "--help"], ["identify", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = " ".join(capsys.readouterr().out.split())
        assert f"{int(ExitCode.ATTACK_SUSPECTED)} attack suspected" in text, argv
        assert not re.search(r"\b(15|16) (attack suspected|too short)", text), argv
    with pytest.raises(SystemExit):
        main(["liveness", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"{int(ExitCode.LIVENESS_NOT_CHECKED)} too short" in text
