"""Finding (and, when online, downloading) the MediaPipe model files.

Search order for an asset ``name``:
  1. ``model_dir`` (``--mediapipe-dir``, which the CLI and the GUI both take; the CLI also as ``--model-dir``),
  2. ``$FACEAPP_MODEL_DIR``,
  3. the user data dir ``<data>/mediapipe`` (where downloads go),
  4. a download from MediaPipe's official URL (or ``$FACEAPP_ASSET_BASE_URL/<name>``, a mirror), verified
     against the SHA-256 below, streamed to a temporary file in the same folder and renamed into place only
     when the hash matches, so a half-written or corrupt file never appears under the final name.
Offline and absent: ModelAssetError saying where to put the file.

A file found on disk is hashed too (once per path, size and modification time in a process) and refused
unless its SHA-256 is a known version: a corrupted ``face_landmarker.task`` inside a valid zip loads
and then kills the process with SIGSEGV, or gives different boxes without a word. Set
``FACEAPP_ALLOW_UNKNOWN_MODELS=1`` to use another version anyway (a warning is logged every time).
A download that stalls (a mirror trickling bytes) stops after ``DOWNLOAD_DEADLINE_S`` in all, or when a
read waits ``timeout`` seconds; the temporary ``.part`` file is removed, as are ``.part`` files that
a killed process left behind more than an hour ago.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from faceapp.core.errors import ModelAssetError
from faceapp.core.files import file_sha256
from faceapp.core.paths import data_dir, mediapipe_model_dirs

log = logging.getLogger(__name__)

LANDMARKER = "face_landmarker.task"
BLAZEFACE = "face_detection_short_range.tflite"

ProgressCallback = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class AssetSpec:
    """A downloadable model file: official URL and the SHA-256 digests of the accepted versions."""

    name: str
    url: str
    sha256: tuple[str, ...]
    kind: str            # "task" (zip bundle) or "tflite" (flatbuffer)
    description: str


ASSETS: dict[str, AssetSpec] = {
    LANDMARKER: AssetSpec(
        LANDMARKER,
        "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
        ("64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",),
        "task",
        "MediaPipe FaceLandmarker: 478 landmarks, blendshapes, transformation matrix",
    ),
    BLAZEFACE: AssetSpec(
        BLAZEFACE,
        # MediaPipe's own build pins this object generation and hash (third_party/external_files.bzl);
        # the copy bundled with mediapipe 0.10.21 (../shared/models) has the second hash.
        "https://storage.googleapis.com/mediapipe-assets/face_detection_short_range.tflite?generation=1661875748538815",
        ("3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
         "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
        "tflite",
        "MediaPipe FaceDetector (BlazeFace short range): box + 6 keypoints (fallback)",
    ),
}


sha256_of = file_sha256      # the name the CLI's `assets` command and the tests use

UNKNOWN_MODELS_ENV = "FACEAPP_ALLOW_UNKNOWN_MODELS"
DOWNLOAD_DEADLINE_S = 600.0      # a whole download (both files are a few MB: minutes even on a slow line)
STALE_PART_S = 3600.0            # .part files older than this were left by a killed download
_VERIFIED: dict[tuple[str, int, int], str] = {}


def verify_asset_file(path: Path, name: str) -> None:
    """``check_asset_file``, then the SHA-256 against the known versions of ``name`` (see module docstring);
    ModelAssetError naming the file and what to do when it is not one of them."""
    spec = ASSETS.get(name)
    check_asset_file(path, spec.kind if spec else None)
    if spec is None:
        return
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    digest = _VERIFIED.get(key)
    if digest is None:
        try:
            digest = file_sha256(path)
        except OSError as error:
            raise ModelAssetError(f"{path}: cannot read model file ({error})", path=str(path)) from error
        _VERIFIED[key] = digest
    if digest in spec.sha256:
        return
    problem = (f"{path}: SHA-256 {digest} is not a known version of {name} (expected "
               f"{' or '.join(spec.sha256)}): the file is corrupt or was changed, and a damaged model can crash "
               "MediaPipe")
    if os.environ.get(UNKNOWN_MODELS_ENV, "").strip() == "1":
        log.warning("%s; used anyway because %s=1", problem, UNKNOWN_MODELS_ENV)
        return
    raise ModelAssetError(f"{problem}. Delete it (it is downloaded again) or copy the official file from {spec.url}; "
                          f"set {UNKNOWN_MODELS_ENV}=1 to use another version at your own risk", path=str(path))


def _remove_stale_parts(folder: Path, name: str) -> None:
    """Delete ``.part`` files of ``name`` that a killed download left in ``folder`` over an hour ago."""
    now = time.time()
    for part in folder.glob(f".{name}.*.part"):
        try:
            if now - part.stat().st_mtime > STALE_PART_S:
                part.unlink()
        except OSError:
            pass


def check_asset_file(path: Path, kind: str | None = None) -> None:
    """Cheap structural check (zip bundle / TFLite flatbuffer magic); ModelAssetError naming the file."""
    kind = kind or ("task" if path.suffix == ".task" else "tflite")
    try:
        size = path.stat().st_size
    except OSError as error:
        raise ModelAssetError(f"{path}: cannot read model file ({error})", path=str(path)) from error
    if size == 0:
        raise ModelAssetError(f"{path}: model file is empty (0 bytes); delete it and fetch it again", path=str(path))
    if kind == "task":
        try:
            with zipfile.ZipFile(path) as bundle:
                bad = bundle.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise ModelAssetError(f"{path}: corrupt model file (not a valid MediaPipe .task bundle: {error})",
                                  path=str(path)) from error
        if bad is not None:
            raise ModelAssetError(f"{path}: corrupt model file (member {bad} fails its CRC)", path=str(path))
    else:
        with open(path, "rb") as handle:
            head = handle.read(8)
        if head[4:8] != b"TFL3":
            raise ModelAssetError(f"{path}: corrupt model file (not a TFLite flatbuffer)", path=str(path))


def _where_to_put(name: str, searched: list[Path]) -> str:
    spec = ASSETS.get(name)
    url = f" from {spec.url}" if spec else ""
    places = ", ".join(str(p) for p in searched)
    return (f"MediaPipe model {name!r} not found (searched: {places}). Download it{url} and put it in one of "
            f"those folders, or point the environment variable FACEAPP_MODEL_DIR (or the option --mediapipe-dir, "
            f"which `python main.py` and the faceapp commands both take) at the folder holding it.")


def asset_url(name: str) -> str:
    """The download URL: ``$FACEAPP_ASSET_BASE_URL/<name>`` when set (a mirror), else the official one."""
    base = os.environ.get("FACEAPP_ASSET_BASE_URL", "").strip()
    if base:
        return base.rstrip("/") + "/" + name
    if name not in ASSETS:
        raise ModelAssetError(f"unknown MediaPipe asset {name!r}; known: {', '.join(sorted(ASSETS))}")
    return ASSETS[name].url


def download_asset(name: str, dest_dir: Path, *, url: str | None = None, progress: ProgressCallback | None = None,
                   timeout: float = 30.0, deadline_s: float | None = None) -> Path:
    """Download ``name`` into ``dest_dir`` atomically, verifying its SHA-256; returns the final path.

    The bytes go to a temporary file in ``dest_dir`` which is renamed only when the hash matches; on any
    failure the temporary file is removed and ModelAssetError explains what happened. ``timeout`` bounds
    each wait for data, ``deadline_s`` (default ``DOWNLOAD_DEADLINE_S``) the whole download.
    """
    deadline_s = DOWNLOAD_DEADLINE_S if deadline_s is None else deadline_s
    if name not in ASSETS:
        raise ModelAssetError(f"unknown MediaPipe asset {name!r}; known: {', '.join(sorted(ASSETS))}")
    spec = ASSETS[name]
    url = url or asset_url(name)
    dest_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(dest_dir, name)
    final = dest_dir / name
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest_dir)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                started = time.monotonic()
                with urllib.request.urlopen(url, timeout=min(timeout, deadline_s)) as response:  # noqa: S310
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    done = 0
                    if progress:
                        progress(0, total)
                    while True:
                        if time.monotonic() - started > deadline_s:
                            raise ModelAssetError(
                                f"could not download {name} from {url}: only {done} bytes"
                                + (f" of {total}" if total else "") + f" arrived in {deadline_s:g} s (the server "
                                "is too slow or stalled); nothing was kept")
                        block = response.read1(1 << 16)
                        if not block:
                            break
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
            except (urllib.error.URLError, OSError, ValueError) as error:
                reason = getattr(error, "reason", error)
                raise ModelAssetError(f"could not download {name} from {url}: {reason}") from error
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if got not in spec.sha256:
            raise ModelAssetError(
                f"downloaded {name} from {url} is corrupt: SHA-256 {got} is not the expected "
                f"{' or '.join(spec.sha256)}; nothing was kept"
            )
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("downloaded %s to %s", name, final)
    return final


def search_dirs(model_dir: Path | None = None) -> list[Path]:
    """Folders searched for assets, in order: ``model_dir``, $FACEAPP_MODEL_DIR, <data>/mediapipe."""
    dirs: list[Path] = []
    if model_dir is not None:
        dirs.append(Path(model_dir).expanduser())
    for folder in mediapipe_model_dirs():
        if folder not in dirs:
            dirs.append(folder)
    return dirs


def resolve_asset(name: str, model_dir: Path | None = None, *, allow_download: bool = True,
                  progress: ProgressCallback | None = None) -> Path:
    """Path of the MediaPipe asset ``name`` (see the module docstring for the search order).

    A file found on disk is checked structurally and against the known SHA-256 digests (``verify_asset_file``):
    a corrupt or unknown one raises ModelAssetError naming it.
    """
    searched = search_dirs(model_dir)
    for folder in searched:
        candidate = folder / name
        if candidate.is_file():
            verify_asset_file(candidate, name)
            return candidate
    if allow_download and name in ASSETS:
        target = data_dir() / "mediapipe"
        try:
            return download_asset(name, target, progress=progress)
        except ModelAssetError as error:
            raise ModelAssetError(f"{error}. {_where_to_put(name, searched)}") from error
    raise ModelAssetError(_where_to_put(name, searched))
