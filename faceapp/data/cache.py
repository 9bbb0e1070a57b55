"""The alignment cache: every image of a dataset (or of a pairs protocol) aligned once with the MediaPipe
pipeline into 112x112 crops, reused by every later training and evaluation run.

Folder ``<cache>/aligned/<name>-<key>/`` (key = sha256 of the absolute file list with sizes and mtimes,
the identities, the alignment settings and the pipeline version):

- ``crops.npy``      uint8 (N, 112, 112, 3) BGR, one row per listed image (zeros where alignment failed),
                     preallocated and written in chunks through a memmap; training reads it as a memmap.
- ``manifest.jsonl`` one JSON record per processed image (index, source path, identity, ok, detector,
                     score, number of faces, quality, failure reason), appended after its chunk of crops is
                     flushed, so the manifest never claims a crop that is not on disk.
- ``info.json``      what the key was made of; ``complete.json`` counts, written at the end;
                     ``manifest.csv`` the same records for spreadsheets.

``align_images`` is a generator of ``Progress`` honouring a ``CancelToken``; cancelled or killed, it
resumes where the manifest stops.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

from faceapp.core.errors import CancelledError, DatasetError, FaceAppError, ModelAssetError
from faceapp.core.paths import cache_dir
from faceapp.core.progress import CancelToken, EtaClock, Job, Progress
from faceapp.data.datasets import ImageItem

CACHE_FORMAT = 1
CROP_SIZE = 112
CHUNK = 32
AUTO_PAD = 0.25               # the retry padding of pad=-1 (automatic)


@dataclass(frozen=True)
class AlignSettings:
    """How images are aligned; part of the cache key.

    pad: fraction of each side added (edge-replicated) on every border before detection; -1 = automatic:
    no padding, and one retry with ``AUTO_PAD`` when no face is found (tight crops where the face fills
    the frame, e.g. celeba_lowres; padding every image would cost detections on in-the-wild photos).
    fallback: accept faces the pipeline finds with its fallback detectors (BlazeFace/Haar, e.g. profiles
    the landmarker misses); every such crop is marked with its detector in the manifest.
    require_landmarker: refuse to build a cache when the MediaPipe landmarker model itself cannot be
    loaded (the whole cache would silently be made of rough fallback crops); False accepts that, and the
    setting is part of the key, so such a cache is never reused by a run that requires the landmarker.
    """

    pad: float = -1.0
    min_confidence: float = 0.3
    fallback: bool = True
    require_landmarker: bool = True
    template: str = "standard"       # FacePipeline's alignment template: "standard" (every pose) or "turned"

    def pads(self) -> tuple[float, ...]:
        """The paddings tried in order until a face is found."""
        return (0.0, AUTO_PAD) if self.pad < 0 else (self.pad,)


@dataclass
class CacheRecord:
    """What happened to one image."""

    index: int
    path: str
    identity: str
    ok: bool
    reason: str = ""               # why no crop: "unreadable: ...", "no face found"
    detector: str = ""
    score: float = 0.0
    faces: int = 0
    pad: float = 0.0
    quality: dict[str, Any] = field(default_factory=dict)


def pipeline_version() -> str:
    """Versions that change what the crops look like (part of the cache key)."""
    import mediapipe

    from faceapp.vision import pipeline as vision_pipeline

    own = getattr(vision_pipeline, "PIPELINE_VERSION", "1")
    return f"faceapp-cache/{CACHE_FORMAT} pipeline/{own} mediapipe/{mediapipe.__version__}"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "images"


def cache_key(items: Sequence[ImageItem], settings: AlignSettings, version: str) -> str:
    """sha256 over the items' absolute paths, sizes, mtimes and identities, the settings and the version."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"version": version, "settings": asdict(settings)}, sort_keys=True).encode())
    for item in items:
        try:
            st = item.path.stat()
            stamp = f"{st.st_size}:{int(st.st_mtime)}"
        except OSError:
            stamp = "missing"
        digest.update(f"\n{item.path.resolve()}\t{item.identity}\t{stamp}".encode())
    return digest.hexdigest()


class AlignedSet:
    """A complete alignment cache opened for reading: crops (memmap), records, and per-image flags."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.info = json.loads((self.folder / "info.json").read_text())
        self.summary = json.loads((self.folder / "complete.json").read_text())
        self.records = _read_manifest(self.folder / "manifest.jsonl", int(self.info["n"]))
        if len(self.records) != self.info["n"]:
            raise DatasetError(f"alignment cache {self.folder} is incomplete or damaged: delete the folder to rebuild it")
        self.crops: np.ndarray = np.load(self.folder / "crops.npy", mmap_mode="r")
        self.ok = np.array([r.ok for r in self.records], dtype=bool)
        self.identities = [r.identity for r in self.records]
        self.paths = [Path(r.path) for r in self.records]

    @property
    def name(self) -> str:
        return str(self.info["name"])

    def __len__(self) -> int:
        return len(self.records)

    @property
    def n_failed(self) -> int:
        return int((~self.ok).sum())

    def failures(self) -> list[CacheRecord]:
        """Records of the images without a crop (unreadable or no face found)."""
        return [r for r in self.records if not r.ok]

    def describe(self) -> str:
        """One line: counts by outcome and detector."""
        s = self.summary
        reasons = ", ".join(f"{k}: {v}" for k, v in s.get("reasons", {}).items()) or "none"
        detectors = ", ".join(f"{k}: {v}" for k, v in s.get("detectors", {}).items())
        return (f"{self.name}: {s['n_ok']} of {s['n']} images aligned ({detectors}); failed {s['n_failed']} "
                f"({reasons})")


def _read_manifest(path: Path, n: int) -> list[CacheRecord]:
    """Records in index order; a torn last line (killed mid-write) and duplicates are ignored."""
    by_index: dict[int, CacheRecord] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                data = json.loads(line)
                record = CacheRecord(**data)
            except (json.JSONDecodeError, TypeError):
                continue
            if 0 <= record.index < n:
                by_index[record.index] = record
    return [by_index[i] for i in sorted(by_index)]


def default_cache_root() -> Path:
    return cache_dir() / "aligned"


def cache_folder(items: Sequence[ImageItem], name: str, settings: AlignSettings,
                 cache_root: Path | None = None) -> Path:
    """Where the cache of these items lives (whether or not it exists yet)."""
    key = cache_key(items, settings, pipeline_version())
    return Path(cache_root or default_cache_root()) / f"{_safe_name(name)}-{key[:16]}"


def open_cached(items: Sequence[ImageItem], name: str, settings: AlignSettings = AlignSettings(),
                cache_root: Path | None = None) -> AlignedSet | None:
    """The complete cache of these items, or None when it must be (re)built."""
    folder = cache_folder(items, name, settings, cache_root)
    return AlignedSet(folder) if (folder / "complete.json").is_file() else None


def _quality_dict(face: Any) -> dict[str, Any]:
    quality = getattr(face, "quality", None)
    if quality is None:
        return {}
    out = {}
    for key, value in asdict(quality).items():
        out[key] = None if value is None else round(float(value), 3)
    return out


class _Aligner:
    """Aligns one image file with a FacePipeline into a crop and a record."""

    def __init__(self, settings: AlignSettings) -> None:
        from faceapp.vision.pipeline import FacePipeline

        self.settings = settings
        self.pipeline = FacePipeline("image", min_confidence=settings.min_confidence, fallback=settings.fallback,
                                     template=settings.template)
        if settings.require_landmarker and self.pipeline.fallback_active:
            reason = getattr(self.pipeline, "fallback_reason", "") or "the landmarker could not be loaded"
            self.pipeline.close()
            raise ModelAssetError(
                "the alignment cache needs the MediaPipe face landmarker (face_landmarker.task), but "
                f"{reason}. Put the file in a folder named by FACEAPP_MODEL_DIR (or --mediapipe-dir), "
                "or allow fallback crops explicitly (AlignSettings(require_landmarker=False)).")

    def close(self) -> None:
        self.pipeline.close()

    def __call__(self, index: int, item: ImageItem) -> tuple[np.ndarray | None, CacheRecord]:
        from faceapp.capture.images import read_image
        from faceapp.vision.pipeline import primary_face_index

        record = CacheRecord(index=index, path=str(item.path), identity=item.identity, ok=False)
        try:
            image = read_image(item.path)
        except FaceAppError as error:
            record.reason = f"unreadable: {error}"
            return None, record
        aligned: list = []
        for pad in self.settings.pads():
            padded = image
            if pad > 0:
                h, w = image.shape[:2]
                py, px = int(round(pad * h)), int(round(pad * w))
                padded = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_REPLICATE)
            aligned = [a for a in self.pipeline.process(padded) if self.settings.fallback or not a.face.is_fallback]
            record.pad = pad
            if aligned:
                break
        record.faces = len(aligned)
        if not aligned:
            record.reason = "no face found"
            return None, record
        best = aligned[primary_face_index([a.face for a in aligned], padded.shape) or 0]
        face, crop = best.face, best.image
        if crop.shape != (CROP_SIZE, CROP_SIZE, 3):
            crop = cv2.resize(crop, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA)
        record.ok = True
        record.detector = getattr(face.detector, "value", str(face.detector))
        record.score = round(float(face.score), 4)
        record.quality = _quality_dict(face)
        return crop, record


def align_images(items: Sequence[ImageItem], *, name: str, settings: AlignSettings = AlignSettings(),
                 cache_root: Path | None = None, cancel: CancelToken | None = None,
                 chunk: int = CHUNK) -> Job[AlignedSet]:
    """Align ``items`` into their cache folder (resuming a partial one); returns the ``AlignedSet``.

    Yields ``Progress(stage="align", done, total, eta, metrics={"failed": ...})`` after each chunk.
    Cancelling writes what is done and raises ``CancelledError``; calling again resumes.
    """
    if not items:
        raise DatasetError(f"{name}: no images to align")
    folder = cache_folder(items, name, settings, cache_root)
    if (folder / "complete.json").is_file():
        return AlignedSet(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(items)
    info_path, crops_path, manifest_path = folder / "info.json", folder / "crops.npy", folder / "manifest.jsonl"
    if not info_path.is_file() or not crops_path.is_file():
        crops = np.lib.format.open_memmap(crops_path, mode="w+", dtype=np.uint8, shape=(n, CROP_SIZE, CROP_SIZE, 3))
        manifest_path.write_text("")
        info = {"format": CACHE_FORMAT, "name": name, "n": n, "settings": asdict(settings),
                "version": pipeline_version(), "root": str(_common_root(items))}
        info_path.write_text(json.dumps(info, indent=2))
    else:
        crops = np.load(crops_path, mmap_mode="r+")
        if crops.shape != (n, CROP_SIZE, CROP_SIZE, 3):
            raise DatasetError(f"alignment cache {folder} has crops of shape {crops.shape}, expected {n} images: "
                               "delete the folder to rebuild it")
    done = {r.index: r for r in _read_manifest(manifest_path, n)}
    todo = [i for i in range(n) if i not in done]
    failed = sum(1 for r in done.values() if not r.ok)
    clock = EtaClock(len(todo))
    yield Progress("align", len(done), n, message=f"{name}: aligning {len(todo)} images"
                   + (f" (resuming, {len(done)} done)" if done else ""), metrics={"failed": failed})
    aligner = _Aligner(settings)
    try:
        for start in range(0, len(todo), chunk):
            batch: list[CacheRecord] = []
            try:
                for i in todo[start:start + chunk]:
                    if cancel is not None and cancel.cancelled:
                        raise CancelledError(f"aligning {name} cancelled after {len(done)} of {n} images; "
                                             "run again to resume")
                    crop, record = aligner(i, items[i])
                    if crop is not None:
                        crops[i] = crop
                    batch.append(record)
            finally:
                _commit(crops, manifest_path, batch)
                for record in batch:
                    done[record.index] = record
                    failed += 0 if record.ok else 1
            finished = min(start + chunk, len(todo))
            yield Progress("align", len(done), n, eta_s=clock.eta(finished), message=name,
                           metrics={"failed": failed, "images/s": round(clock.rate(finished), 1)})
    finally:
        aligner.close()
        del crops
    records = [done[i] for i in range(n)]
    _finish(folder, records)
    return AlignedSet(folder)


def _commit(crops: np.ndarray, manifest: Path, records: list[CacheRecord]) -> None:
    """Flush crops to disk first, then append their records (the manifest never runs ahead)."""
    if not records:
        return
    crops.flush()
    with open(manifest, "a", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(asdict(record)) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _finish(folder: Path, records: list[CacheRecord]) -> None:
    reasons: dict[str, int] = {}
    detectors: dict[str, int] = {}
    for r in records:
        if r.ok:
            detectors[r.detector] = detectors.get(r.detector, 0) + 1
        else:
            key = "unreadable" if r.reason.startswith("unreadable") else r.reason
            reasons[key] = reasons.get(key, 0) + 1
    with open(folder / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["index", "path", "identity", "ok", "reason", "detector", "score", "faces", "pad",
                         "interocular", "sharpness", "brightness", "yaw", "pitch", "roll"])
        for r in records:
            q = r.quality
            writer.writerow([r.index, r.path, r.identity, int(r.ok), r.reason, r.detector, r.score, r.faces, r.pad,
                             q.get("interocular"), q.get("sharpness"), q.get("brightness"), q.get("yaw"),
                             q.get("pitch"), q.get("roll")])
    n_ok = sum(detectors.values())
    summary = {"n": len(records), "n_ok": n_ok, "n_failed": len(records) - n_ok, "reasons": reasons,
               "detectors": detectors}
    (folder / "complete.json").write_text(json.dumps(summary, indent=2))


def _common_root(items: Sequence[ImageItem]) -> Path:
    try:
        return Path(os.path.commonpath([str(i.path.resolve().parent) for i in items]))
    except ValueError:
        return Path("/")


def iter_failures(aligned: AlignedSet, limit: int | None = None) -> Iterator[str]:
    """``path: reason`` lines for the images that have no crop (for reports and the CLI)."""
    for k, record in enumerate(aligned.failures()):
        if limit is not None and k >= limit:
            return
        yield f"{record.path}: {record.reason}"
