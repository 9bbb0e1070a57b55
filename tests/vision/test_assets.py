"""The MediaPipe asset resolver: search order, offline message, verified atomic downloads from a local
HTTP server on 127.0.0.1 (one serving the real files, one serving a corrupted copy)."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path
from typing import Iterator

import pytest

from faceapp.core.errors import ExitCode, ModelAssetError
from faceapp.vision.assets import ASSETS, BLAZEFACE, LANDMARKER, check_asset_file, download_asset, resolve_asset, sha256_of


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def serve() -> Iterator:
    """Start HTTP servers on 127.0.0.1 serving a folder; returns the base URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_local_assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty model dir and user data dir, so nothing resolves from disk; returns the data dir."""
    monkeypatch.setenv("FACEAPP_MODEL_DIR", str(tmp_path / "models-env"))
    monkeypatch.setenv("FACEAPP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FACEAPP_ASSET_BASE_URL", raising=False)
    return tmp_path / "data"


def test_shared_copies_match_the_known_hashes(mediapipe_models: Path) -> None:
    for name, spec in ASSETS.items():
        assert sha256_of(mediapipe_models / name) in spec.sha256


def test_resolves_from_env_then_explicit_dir_first(mediapipe_models: Path, tmp_path: Path) -> None:
    assert resolve_asset(LANDMARKER, allow_download=False) == mediapipe_models / LANDMARKER
    override = tmp_path / "mine"
    override.mkdir()
    shutil.copy(mediapipe_models / BLAZEFACE, override / BLAZEFACE)
    assert resolve_asset(BLAZEFACE, override, allow_download=False) == override / BLAZEFACE
    # the explicit folder lacks the landmarker: the search goes on to $FACEAPP_MODEL_DIR
    assert resolve_asset(LANDMARKER, override, allow_download=False) == mediapipe_models / LANDMARKER


def test_user_data_dir_is_searched(mediapipe_models: Path, no_local_assets: Path) -> None:
    (no_local_assets / "mediapipe").mkdir(parents=True)
    shutil.copy(mediapipe_models / BLAZEFACE, no_local_assets / "mediapipe" / BLAZEFACE)
    assert resolve_asset(BLAZEFACE, allow_download=False) == no_local_assets / "mediapipe" / BLAZEFACE


def test_offline_and_absent_says_where_to_put_the_file(no_local_assets: Path) -> None:
    with pytest.raises(ModelAssetError) as info:
        resolve_asset(LANDMARKER, allow_download=False)
    message = str(info.value)
    assert "face_landmarker.task" in message and "not found" in message
    assert "models-env" in message and str(no_local_assets / "mediapipe") in message
    assert ASSETS[LANDMARKER].url in message and "FACEAPP_MODEL_DIR" in message
    assert info.value.exit_code == ExitCode.MODEL_ASSET


def test_download_is_verified_atomic_and_reports_progress(mediapipe_models: Path, serve, tmp_path: Path) -> None:
    base = serve(mediapipe_models)
    dest = tmp_path / "dest"
    calls: list[tuple[int, int | None]] = []
    path = download_asset(LANDMARKER, dest, url=f"{base}/{LANDMARKER}", progress=lambda d, t: calls.append((d, t)))
    assert path == dest / LANDMARKER
    assert sha256_of(path) == sha256_of(mediapipe_models / LANDMARKER)
    size = (mediapipe_models / LANDMARKER).stat().st_size
    assert calls[0] == (0, size) and calls[-1] == (size, size)
    assert all(b[0] >= a[0] for a, b in zip(calls, calls[1:]))
    assert sorted(p.name for p in dest.iterdir()) == [LANDMARKER]      # no temporary file left


def test_corrupted_download_is_rejected_and_not_left_on_disk(mediapipe_models: Path, serve, tmp_path: Path) -> None:
    bad = tmp_path / "bad-server"
    bad.mkdir()
    data = bytearray((mediapipe_models / BLAZEFACE).read_bytes())
    data[5000:5010] = b"\x00" * 10          # same size, different bytes
    (bad / BLAZEFACE).write_bytes(bytes(data))
    base = serve(bad)
    dest = tmp_path / "dest"
    with pytest.raises(ModelAssetError, match="corrupt|SHA-256"):
        download_asset(BLAZEFACE, dest, url=f"{base}/{BLAZEFACE}")
    assert list(dest.iterdir()) == []


def test_missing_file_on_server_is_a_clear_error(serve, tmp_path: Path) -> None:
    base = serve(tmp_path)
    with pytest.raises(ModelAssetError, match="could not download"):
        download_asset(LANDMARKER, tmp_path / "dest", url=f"{base}/{LANDMARKER}")
    assert list((tmp_path / "dest").iterdir()) == []


def test_resolve_downloads_into_user_data_dir_from_mirror(mediapipe_models: Path, serve, no_local_assets: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEAPP_ASSET_BASE_URL", serve(mediapipe_models))
    path = resolve_asset(BLAZEFACE)
    assert path == no_local_assets / "mediapipe" / BLAZEFACE
    assert sha256_of(path) == sha256_of(mediapipe_models / BLAZEFACE)
    # second call finds it on disk (the server is no longer needed)
    monkeypatch.setenv("FACEAPP_ASSET_BASE_URL", "http://127.0.0.1:9/")
    assert resolve_asset(BLAZEFACE) == path


def test_unreachable_mirror_explains_both_failure_and_remedy(no_local_assets: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEAPP_ASSET_BASE_URL", "http://127.0.0.1:9")     # discard port: refused
    with pytest.raises(ModelAssetError) as info:
        resolve_asset(LANDMARKER)
    assert "could not download" in str(info.value) and "put it in" in str(info.value)
    assert not (no_local_assets / "mediapipe" / LANDMARKER).exists()


def test_corrupt_files_on_disk_are_named(mediapipe_models: Path, tmp_path: Path) -> None:
    truncated = tmp_path / LANDMARKER
    truncated.write_bytes((mediapipe_models / LANDMARKER).read_bytes()[:100_000])
    with pytest.raises(ModelAssetError, match=str(truncated)):
        resolve_asset(LANDMARKER, tmp_path, allow_download=False)
    text = tmp_path / BLAZEFACE
    text.write_text("not a model")
    with pytest.raises(ModelAssetError, match="corrupt model file"):
        check_asset_file(text)
    empty = tmp_path / "empty.task"
    empty.write_bytes(b"")
    with pytest.raises(ModelAssetError, match="empty"):
        check_asset_file(empty)


# ------------------------------------------------------------------------------- hostile model files (issue 15)
def _tampered_bundle(original: Path, target: Path) -> Path:
    """``original`` rewritten as a valid zip (every CRC right) with one byte of its largest member changed."""
    import zipfile

    with zipfile.ZipFile(original) as bundle:
        members = [(info, bundle.read(info.filename)) for info in bundle.infolist()]
    largest = max(range(len(members)), key=lambda i: len(members[i][1]))
    with zipfile.ZipFile(target, "w") as bundle:
        for i, (info, data) in enumerate(members):
            if i == largest:
                data = data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:]
            bundle.writestr(info, data)
    return target


def test_a_tampered_bundle_inside_a_valid_zip_is_refused(mediapipe_models: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    tampered = _tampered_bundle(mediapipe_models / LANDMARKER, tmp_path / LANDMARKER)
    check_asset_file(tampered)                                   # structurally fine: only the hash tells
    monkeypatch.delenv("FACEAPP_ALLOW_UNKNOWN_MODELS", raising=False)
    with pytest.raises(ModelAssetError, match="not a known version") as caught:
        resolve_asset(LANDMARKER, tmp_path, allow_download=False)
    assert str(tampered) in str(caught.value) and caught.value.exit_code == ExitCode.MODEL_ASSET
    monkeypatch.setenv("FACEAPP_ALLOW_UNKNOWN_MODELS", "1")      # the user's explicit choice, logged
    assert resolve_asset(LANDMARKER, tmp_path, allow_download=False) == tampered


def test_detect_refuses_a_tampered_landmarker(mediapipe_models: Path, tmp_path: Path, celeba: Path, capsys,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from faceapp.cli.main import main

    monkeypatch.delenv("FACEAPP_ALLOW_UNKNOWN_MODELS", raising=False)
    _tampered_bundle(mediapipe_models / LANDMARKER, tmp_path / LANDMARKER)
    photo = sorted(celeba.glob("*/*.jpg"))[0]
    code = main(["detect", str(photo), "--mediapipe-dir", str(tmp_path), "--detector", "landmarker", "--no-download"])
    err = capsys.readouterr().err
    assert code == ExitCode.MODEL_ASSET and "not a known version" in err and str(tmp_path / LANDMARKER) in err


class _TrickleHandler(http.server.BaseHTTPRequestHandler):
    """Announces a megabyte, then sends one byte every 50 ms (a mirror that never quite stops)."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        import time

        self.send_response(200)
        self.send_header("Content-Length", str(1 << 20))
        self.end_headers()
        try:
            for _ in range(200):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def test_a_trickling_mirror_times_out_and_leaves_no_part_file(tmp_path: Path) -> None:
    import os
    import time

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    stale = tmp_path / f".{LANDMARKER}.killed.part"             # left by a download that was killed
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    try:
        with pytest.raises(ModelAssetError, match="too slow or stalled"):
            download_asset(LANDMARKER, tmp_path, url=f"http://127.0.0.1:{server.server_address[1]}/x",
                           timeout=5.0, deadline_s=0.5)
    finally:
        server.shutdown()
        server.server_close()
    assert list(tmp_path.iterdir()) == []
