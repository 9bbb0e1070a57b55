"""``faceapp detect / align / embed / compare / assets`` end to end, in process, on real photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceapp.capture.images import read_image
from faceapp.cli.main import main
from faceapp.core.errors import ExitCode
from tests.capture.composed import side_by_side, write_large_jpeg


def run(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, dict, str]:
    code, out, err = run(capsys, *argv, "--json")
    return code, json.loads(out), err


@pytest.fixture(scope="module")
def photos(celeba: Path) -> list[Path]:
    return sorted((celeba / "07201").glob("*.jpg"))[:4]


@pytest.fixture(scope="module")
def no_face(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("noface") / "wall.png"
    cv2.imwrite(str(path), np.full((240, 320, 3), 128, np.uint8))
    return path


@pytest.fixture(scope="module")
def two_faces(celeba: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    paths = sorted(celeba.glob("*/*.jpg"))
    path = tmp_path_factory.mktemp("two") / "two.png"
    cv2.imwrite(str(path), side_by_side([read_image(paths[0]), read_image(paths[40])], [200, 300]))
    return path


# ----------------------------------------------------------------------------------------------- detect
def test_detect_reports_boxes_points_pose_quality(capsys, photos: list[Path]) -> None:
    code, data, _ = run_json(capsys, "detect", *photos[:2], "--landmarks", "--blendshapes")
    assert code == ExitCode.OK
    assert data["detector"] == "landmarker" and data["fallback"] is False
    assert [Path(i["path"]) for i in data["images"]] == photos[:2]
    face = data["images"][0]["faces"][0]
    assert len(face["box"]) == 4 and np.array(face["five_points"]).shape == (5, 2)
    assert set(face["pose"]) == {"yaw", "pitch", "roll"}
    assert set(face["quality"]) == {"face_size", "interocular", "sharpness", "brightness"}
    assert np.array(face["landmarks"]).shape == (478, 3) and len(face["blendshapes"]) == 52
    assert data["images"][0]["width"] == read_image(photos[0]).shape[1]


def test_detect_text_output(capsys, photos: list[Path]) -> None:
    code, out, _ = run(capsys, "detect", photos[0])
    assert code == ExitCode.OK
    assert out.startswith(f"{photos[0]}: 1 face") and "yaw=" in out and "eyes=" in out


def test_detect_no_face_exit_code_and_message(capsys, photos: list[Path], no_face: Path) -> None:
    code, data, err = run_json(capsys, "detect", photos[0], no_face)
    assert code == ExitCode.NO_FACE
    assert [len(i["faces"]) for i in data["images"]] == [1, 0]        # every file still reported
    assert "no face" in err and str(no_face) in err


def test_detect_several_faces_all_reported(capsys, two_faces: Path) -> None:
    code, data, _ = run_json(capsys, "detect", two_faces)
    assert code == ExitCode.OK
    faces = data["images"][0]["faces"]
    assert len(faces) == 2 and faces[0]["box"][2] * faces[0]["box"][3] > faces[1]["box"][2] * faces[1]["box"][3]


@pytest.mark.parametrize("kind", ["missing", "text", "empty", "truncated"])
def test_detect_bad_files(capsys, photos: list[Path], tmp_path: Path, kind: str) -> None:
    path = tmp_path / "photo.jpg"
    if kind == "text":
        path.write_text("hello, I am not a JPEG\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(photos[0].read_bytes()[:3000])
    code, out, err = run(capsys, "detect", path)
    assert code == ExitCode.INPUT_FILE
    assert str(path) in err and "Traceback" not in err
    expected = {"missing": "no such file", "text": "not an image", "empty": "0 bytes", "truncated": "truncated"}[kind]
    assert expected in err


def test_detect_bad_file_among_good_ones_reports_all(capsys, photos: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    code, data, err = run_json(capsys, "detect", photos[0], bad)
    assert code == ExitCode.INPUT_FILE
    assert len(data["images"][0]["faces"]) == 1 and "not an image" in data["images"][1]["error"]


def test_detect_huge_image_reports_file_coordinates(capsys, photos: list[Path], tmp_path: Path) -> None:
    path = write_large_jpeg(tmp_path / "huge.jpg", face=read_image(photos[0]), face_height=8000)
    code, data, _ = run_json(capsys, "detect", path)
    assert code == ExitCode.OK
    image = data["images"][0]
    assert (image["width"], image["height"]) == (20000, 20000) and image["decoded_scale"] == 0.25
    x, y, w, h = image["faces"][0]["box"]
    assert abs(x + w / 2 - 10000) < 1500 and abs(y + h / 2 - 10000) < 2500 and w > 1500


def test_corrupt_model_file_is_named(capsys, mediapipe_models: Path, photos: list[Path], tmp_path: Path) -> None:
    broken = tmp_path / "face_landmarker.task"
    broken.write_bytes((mediapipe_models / "face_landmarker.task").read_bytes()[:40_000])
    code, _, err = run(capsys, "detect", photos[0], "--mediapipe-dir", tmp_path, "--detector", "landmarker")
    assert code == ExitCode.MODEL_ASSET and str(broken) in err and "corrupt" in err
    # auto: the fallback runs and says so
    code, data, err = run_json(capsys, "detect", photos[0], "--model-dir", tmp_path)
    assert code == ExitCode.OK and data["fallback"] is True and data["detector"] == "blazeface"
    assert data["images"][0]["faces"][0]["detector"] == "blazeface" and "fallback" in err


# ----------------------------------------------------------------------------------------------- align
def test_align_writes_112_crops_mirroring_folders(capsys, celeba: Path, tmp_path: Path) -> None:
    folder = celeba / "07201"
    code, data, _ = run_json(capsys, "align", folder, "-o", tmp_path / "out")
    assert data["written"] >= len(list(folder.glob("*.jpg"))) - 2
    first = sorted(folder.glob("*.jpg"))[0]
    crop = cv2.imread(str(tmp_path / "out" / f"{first.stem}.png"))
    assert crop is not None and crop.shape == (112, 112, 3)
    assert code in (ExitCode.OK, ExitCode.NO_FACE)          # a few CelebA photos have no detectable face


def test_align_all_faces_and_size(capsys, two_faces: Path, tmp_path: Path) -> None:
    code, data, _ = run_json(capsys, "align", two_faces, "-o", tmp_path, "--all-faces", "--size", "224")
    assert code == ExitCode.OK and data["written"] == 2
    assert cv2.imread(str(tmp_path / "two_2.png")).shape == (224, 224, 3)
    code, data, _ = run_json(capsys, "align", two_faces, "-o", tmp_path / "main")
    assert data["written"] == 1 and "largest" in data["images"][0]["note"]


def test_align_no_face(capsys, no_face: Path, tmp_path: Path) -> None:
    code, _, err = run(capsys, "align", no_face, "-o", tmp_path)
    assert code == ExitCode.NO_FACE and "no face" in err


# ----------------------------------------------------------------------------------------------- embed
def test_embed_writes_npz_with_relative_keys_and_failures(capsys, photos: list[Path], no_face: Path,
                                                          tmp_path: Path) -> None:
    folder = tmp_path / "set"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    for i, photo in enumerate(photos[:3]):
        (folder / "a" / photo.name).write_bytes(photo.read_bytes())
    (folder / "b" / "wall.png").write_bytes(no_face.read_bytes())
    out = tmp_path / "emb.npz"
    code, summary, err = run_json(capsys, "embed", folder, "-o", out)
    assert code == ExitCode.OK
    data = np.load(out)
    assert sorted(data["keys"].tolist()) == sorted(f"a/{p.name}" for p in photos[:3])
    assert data["emb"].dtype == np.float32 and data["emb"].shape == (3, summary["dim"])
    np.testing.assert_allclose(np.linalg.norm(data["emb"], axis=1), 1.0, atol=1e-5)
    assert data["failed"].tolist() == ["b/wall.png"]
    assert str(data["model_id"]) == summary["model_id"]
    assert summary["embedded"] == 3 and summary["failed"] == [{"key": "b/wall.png", "reason": "no face found"}]
    # --root and --flip-tta: keys change, vectors stay unit and differ from the plain ones
    code, _, _ = run_json(capsys, "embed", folder / "a", "--root", tmp_path, "-o", tmp_path / "tta.npz", "--flip-tta")
    tta = np.load(tmp_path / "tta.npz")
    assert all(k.startswith("set/a/") for k in tta["keys"].tolist())
    np.testing.assert_allclose(np.linalg.norm(tta["emb"], axis=1), 1.0, atol=1e-5)
    assert not np.allclose(tta["emb"], data["emb"][np.argsort(data["keys"])][np.argsort(np.argsort(tta["keys"]))])


def test_embed_nothing_embeddable(capsys, no_face: Path, tmp_path: Path) -> None:
    code, summary, err = run_json(capsys, "embed", no_face, "-o", tmp_path / "none.npz")
    assert code == ExitCode.NO_FACE and summary["embedded"] == 0 and "no face" in err
    assert np.load(tmp_path / "none.npz")["emb"].shape[0] == 0


# ----------------------------------------------------------------------------------------------- compare
def test_compare_same_and_different(capsys, photos: list[Path]) -> None:
    code, data, _ = run_json(capsys, "compare", photos[0], photos[0])
    assert code == ExitCode.OK and data["similarity"] == pytest.approx(1.0, abs=1e-5)
    code, data, _ = run_json(capsys, "compare", photos[0], photos[1])
    assert code == ExitCode.OK and -1.0 <= data["similarity"] < 1.0
    assert data["a"]["faces"] == 1 and "note" not in data["a"]


def test_compare_gives_a_verdict_at_the_model_cards_threshold(capsys, cfp: Path) -> None:
    """With the shipped model (trained, thresholds in its card): CFP person 450 twice, then 450 vs 451."""
    images = cfp / "Data" / "Images"
    code, same, _ = run_json(capsys, "compare", images / "450/frontal/01.jpg", images / "450/frontal/05.jpg")
    assert code == ExitCode.OK and same["trained"] and same["same_person"] is True
    assert same["similarity"] >= same["threshold"] and same["target_far"] == pytest.approx(1e-3)
    code, out, _ = run(capsys, "compare", images / "450/frontal/01.jpg", images / "451/frontal/01.jpg")
    assert code == ExitCode.OK and "different people" in out and "verify threshold" in out


def test_compare_several_faces_uses_largest_and_says_so(capsys, two_faces: Path, photos: list[Path]) -> None:
    code, data, _ = run_json(capsys, "compare", two_faces, photos[0])
    assert code == ExitCode.OK
    assert data["a"]["faces"] == 2 and "largest" in data["a"]["note"]
    code, out, _ = run(capsys, "compare", two_faces, photos[0])
    assert "used the largest" in out


def test_compare_no_face(capsys, photos: list[Path], no_face: Path) -> None:
    code, _, err = run(capsys, "compare", photos[0], no_face)
    assert code == ExitCode.NO_FACE and "no face" in err and str(no_face) in err


# ----------------------------------------------------------------------------------------------- assets / help
def test_assets_lists_resolved_models(capsys, mediapipe_models: Path) -> None:
    code, data, _ = run_json(capsys, "assets")
    assert code == ExitCode.OK
    assert {a["name"]: a["known_version"] for a in data["assets"]} == {
        "face_landmarker.task": True, "face_detection_short_range.tflite": True}
    assert all(Path(a["path"]).parent == mediapipe_models for a in data["assets"])


def test_assets_missing_offline(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEAPP_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("FACEAPP_DATA_DIR", str(tmp_path / "data"))
    code, out, _ = run(capsys, "assets")
    assert code == ExitCode.MODEL_ASSET and "MISSING" in out and "put it in" in out


def test_assets_download_from_a_mirror_with_progress(capsys, mediapipe_models: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mediapipe_models))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        monkeypatch.setenv("FACEAPP_MODEL_DIR", str(tmp_path / "empty"))
        monkeypatch.setenv("FACEAPP_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("FACEAPP_ASSET_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
        code, out, err = run(capsys, "assets", "--download")
    finally:
        server.shutdown()
        server.server_close()
    assert code == ExitCode.OK and "100%" in err
    assert (tmp_path / "data" / "mediapipe" / "face_landmarker.task").is_file()
    assert "unknown version" not in out


def test_help_documents_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["detect", "--help"])
    out = capsys.readouterr().out
    assert "no face" in out and "--mediapipe-dir" in out


def test_bad_numeric_options_are_usage_errors(capsys, photos: list[Path]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["detect", str(photos[0]), "--max-side", "10"])
    assert info.value.code == ExitCode.USAGE and "at least 64" in capsys.readouterr().err


@pytest.mark.slow
def test_detect_states_the_cap_and_crowd_finds_every_face(capsys, celeba: Path, tmp_path: Path) -> None:
    from tests.capture.composed import face_grid

    people = sorted(p for p in celeba.iterdir() if p.is_dir())[:20]
    group = tmp_path / "group.png"
    cv2.imwrite(str(group), face_grid([read_image(sorted(p.glob("*.jpg"))[0]) for p in people], 5, 200))
    code, data, _ = run_json(capsys, "detect", group)
    image = data["images"][0]
    assert code == ExitCode.OK and len(image["faces"]) < 20 and "at most 4 faces per look" in image["note"]
    code, data, _ = run_json(capsys, "detect", group, "--crowd")
    image = data["images"][0]
    assert code == ExitCode.OK and 19 <= len(image["faces"]) <= 22 and "note" not in image
