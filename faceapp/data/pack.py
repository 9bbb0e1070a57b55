"""Packed training crops: the aligned 112x112 crops of a training run in one compact file, to train where
the datasets, MediaPipe and the alignment cache are not (a GPU machine lent for a few minutes).

A pack is an ``.npz`` (``np.savez``; the crops are compressed one by one, the archive is not) holding:

- ``blob`` uint8: every crop encoded (WebP quality 80 by default, ~1.8 KB a crop; or JPEG/PNG), concatenated;
  ``offsets`` int64 (N + 1): crop ``i`` is ``blob[offsets[i]:offsets[i + 1]]``;
- ``labels`` int32 (N) into ``identities`` (C names, namespaced ``dataset/identity`` as the trainer names them);
- ``data_card``: JSON of the data card of the run that packed it (datasets, counts, identity filters);
- ``sources`` (optional): the crops' source image paths, newline-joined UTF-8, so a validation protocol that
  shares people with the pack is still refused on the machine that packed it;
- ``format``: ``"faceapp-pack/1"`` (absent from the first packs, which read the same).

A ``DatasetSpec`` whose path is a pack (layout ``"pack"``, or ``"auto"`` and an ``.npz`` suffix) trains like a
dataset folder: ``scan_pack`` reads the names and applies the spec's ``identities`` / ``exclude`` /
``max_per_identity`` (items may name one packed dataset, ``cfp/001-400``; unprefixed items apply to every
packed dataset; ``identities`` keeps a packed dataset whole when no item applies to it), ``load_pack`` decodes
the selected crops into a ``PackedSet`` that ``data.assemble`` takes in place of an ``AlignedSet``.
The identities keep the names they were packed with, so a run from the pack labels people exactly as a run
from the folders does (same hold-out split for the same seed).

    write_pack("crops.npz", data, data_card)                 # data: LabelledCrops (training.loop.training_data)
    crops = read_pack("crops.npz", exclude="cfp/301-400")    # PackedSet, decoded
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceapp.core.errors import DatasetError
from faceapp.core.files import atomic_file
from faceapp.core.progress import CancelToken, Job, Progress, run_to_completion
from faceapp.data.datasets import DatasetSpec, Range, identity_selected, parse_identity_filter, read_exclusions

PACK_FORMAT = "faceapp-pack/1"
CROP_SHAPE = (112, 112, 3)
ENCODINGS = {"webp": cv2.IMWRITE_WEBP_QUALITY, "jpg": cv2.IMWRITE_JPEG_QUALITY, "png": None}
_REQUIRED = ("blob", "offsets", "labels", "identities", "data_card")


def is_pack(spec: DatasetSpec) -> bool:
    """Whether a dataset spec names a pack file (layout "pack", or "auto" and a ``.npz`` path)."""
    return spec.layout == "pack" or (spec.layout == "auto" and Path(spec.path).suffix.lower() == ".npz")


@dataclass
class PackListing:
    """What ``scan_pack`` found: the crops a spec selects from a pack (nothing decoded yet)."""

    name: str
    root: Path                        # the pack file
    rows: np.ndarray                  # selected crop numbers in the pack
    row_identities: list[str]         # namespaced identity of each selected crop
    packed: list[dict[str, Any]] = field(default_factory=list)     # the data card it was packed with
    layout: str = "pack"

    @property
    def identities(self) -> list[str]:
        return sorted(set(self.row_identities))

    @property
    def namespaces(self) -> set[str]:
        """The dataset names its identities carry (``celeba_subset`` of ``celeba_subset/1042``)."""
        return {name.partition("/")[0] for name in self.row_identities}

    def counts(self) -> dict[str, int]:
        """identity -> number of selected crops."""
        out: dict[str, int] = {}
        for name in self.row_identities:
            out[name] = out.get(name, 0) + 1
        return out


class PackedSet:
    """Decoded pack crops in memory, read like an ``AlignedSet`` (every row has a crop)."""

    def __init__(self, listing: PackListing, crops: np.ndarray, paths: list[Path]) -> None:
        self.listing = listing
        self.crops = crops                               # (N, 112, 112, 3) uint8 BGR
        self.identities = list(listing.row_identities)
        self.ok = np.ones(len(self.identities), dtype=bool)
        self.paths = paths                               # source images when the pack records them, else []
        self.folder = listing.root

    @property
    def name(self) -> str:
        return self.listing.name

    @property
    def packed(self) -> list[dict[str, Any]]:
        return self.listing.packed

    def __len__(self) -> int:
        return len(self.identities)

    @property
    def n_failed(self) -> int:
        return 0

    def failures(self) -> list:
        return []

    def describe(self) -> str:
        packed = ", ".join(str(d.get("name")) for d in self.packed if isinstance(d, dict)) or "?"
        return (f"{self.name}: {len(self)} crops of {len(set(self.identities))} identities from the pack "
                f"{self.listing.root.name} (packed from {packed})")


def _open(path: Path) -> Any:
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DatasetError(f"pack {path} does not exist (write one with scripts/pack_training_crops.py)") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"pack {path} cannot be read as an .npz file ({exc})") from None
    missing = [key for key in _REQUIRED if key not in z.files]
    if missing:
        raise DatasetError(f"pack {path} is not a FaceApp pack: it lacks {', '.join(missing)} "
                           "(write packs with scripts/pack_training_crops.py)")
    fmt = str(z["format"]) if "format" in z.files else PACK_FORMAT
    if fmt != PACK_FORMAT:
        raise DatasetError(f"pack {path} has format {fmt!r}; this FaceApp reads {PACK_FORMAT!r}")
    return z


def _scoped(text: str, dataset: str) -> tuple[list[Range], set[str]] | None:
    """The items of an identity filter that apply to one packed dataset (prefixed ``dataset/`` or not at
    all), parsed; None when none applies."""
    mine = [short for owner, _, short in (part.strip().rpartition("/") for part in text.split(","))
            if short and (not owner or owner == dataset)]
    return parse_identity_filter(",".join(mine)) if mine else None


def scan_pack(spec: DatasetSpec) -> PackListing:
    """The crops of a pack a dataset spec selects, with their identities (``DatasetError`` if unusable)."""
    path = Path(spec.path).expanduser()
    if path.is_dir():
        raise DatasetError(f"dataset {path} is a folder, not a pack file (layout = \"pack\" needs an .npz file "
                           "written by scripts/pack_training_crops.py)")
    if not spec.include_profile:
        raise DatasetError(f"pack {path}: include_profile = false cannot apply to packed crops (profiles are "
                           "chosen when packing: set it in the config that is packed)")
    if spec.pad != -1.0:
        raise DatasetError(f"pack {path}: pad applies to alignment, and packed crops are already aligned (set it "
                           "in the config that is packed)")
    path = path.resolve() if path.exists() else path
    z = _open(path)
    labels = np.asarray(z["labels"], dtype=np.int64)
    names = [str(n) for n in z["identities"]]
    offsets = np.asarray(z["offsets"])
    if offsets.shape != (labels.size + 1,) or (labels.size and (labels.min() < 0 or labels.max() >= len(names))):
        raise DatasetError(f"pack {path} is damaged: offsets, labels and identities do not agree")
    try:
        packed = json.loads(str(z["data_card"]))
    except json.JSONDecodeError:
        packed = []
    keep = np.ones(len(names), dtype=bool)
    for dataset in sorted({n.partition("/")[0] for n in names}):
        include = _scoped(spec.identities, dataset) if spec.identities else None
        exclude = read_exclusions(spec.exclude, dataset) if spec.exclude else None
        for i, full in enumerate(names):
            owner, _, short = full.partition("/")
            if owner != dataset:
                continue
            if include is not None and not identity_selected(short, *include):
                keep[i] = False
            if exclude is not None and identity_selected(short, *exclude):
                keep[i] = False
    rows = np.flatnonzero(keep[labels])
    if spec.max_per_identity > 0 and rows.size:
        seen: dict[int, int] = {}
        capped = []
        for r in rows:
            label = int(labels[r])
            seen[label] = seen.get(label, 0) + 1
            if seen[label] <= spec.max_per_identity:
                capped.append(r)
        rows = np.asarray(capped, dtype=np.int64)
    if rows.size == 0:
        filters = " and ".join(f"{k} {v!r}" for k, v in (("identities", spec.identities), ("exclude", spec.exclude)) if v)
        raise DatasetError(f"pack {path} has no crops" + (f" left after the filters ({filters})" if filters else ""))
    return PackListing(name=spec.name or path.stem, root=path, rows=rows,
                       row_identities=[names[int(labels[r])] for r in rows],
                       packed=packed if isinstance(packed, list) else [packed])


def load_pack(listing: PackListing, cancel: CancelToken | None = None, threads: int = 0,
              chunk: int = 2048) -> Job[PackedSet]:
    """Decode the crops ``listing`` selects (threads 0 = up to 8), with "prepare" progress events."""
    z = _open(listing.root)
    blob, offsets = z["blob"], np.asarray(z["offsets"], dtype=np.int64)
    rows = listing.rows
    out = np.empty((rows.size, *CROP_SHAPE), dtype=np.uint8)

    def decode(k: int) -> None:
        i = int(rows[k])
        img = cv2.imdecode(blob[offsets[i]:offsets[i + 1]], cv2.IMREAD_COLOR)
        if img is None or img.shape != CROP_SHAPE:
            raise DatasetError(f"pack {listing.root}: crop {i} does not decode to a 112x112 colour image")
        out[k] = img

    workers = threads if threads > 0 else min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, rows.size, chunk):
            if cancel is not None:
                cancel.raise_if_cancelled("decoding the pack")
            list(pool.map(decode, range(start, min(rows.size, start + chunk))))
            yield Progress("prepare", min(rows.size, start + chunk), int(rows.size),
                           message=f"decoding {listing.root.name}")
    paths: list[Path] = []
    if "sources" in z.files:
        sources = bytes(np.asarray(z["sources"], dtype=np.uint8)).decode("utf-8").split("\n")
        if len(sources) == offsets.size - 1:
            paths = [Path(sources[int(r)]) for r in rows]
    return PackedSet(listing, out, paths)


def read_pack(path: str | Path, identities: str = "", exclude: str = "", threads: int = 0) -> PackedSet:
    """The decoded crops of a pack (filters as in ``DatasetSpec``), without progress events."""
    spec = DatasetSpec(path=str(path), layout="pack", identities=identities, exclude=exclude)
    return run_to_completion(load_pack(scan_pack(spec), threads=threads))


def write_pack(path: str | Path, data: Any, data_card: list[dict[str, Any]], fmt: str = "webp", quality: int = 80,
               threads: int = 0, cancel: CancelToken | None = None) -> Path:
    """Write ``data`` (a ``LabelledCrops``) as a pack; the file appears complete or not at all."""
    if fmt not in ENCODINGS:
        raise DatasetError(f"pack encoding {fmt!r}: expected one of {', '.join(ENCODINGS)}")
    if fmt != "png" and not 1 <= quality <= 100:
        raise DatasetError(f"pack quality must be 1-100, got {quality}")
    flag = ENCODINGS[fmt]
    params = [flag, int(quality)] if flag is not None else []
    out = Path(path)
    n = len(data)
    blobs: list[bytes] = [b""] * n

    def encode(i: int, crop: np.ndarray) -> None:
        ok, buf = cv2.imencode(f".{fmt}", crop, params)
        if not ok:
            raise DatasetError(f"{fmt} encoding failed for crop {i}")
        blobs[i] = buf.tobytes()

    workers = threads if threads > 0 else min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, n, 512):
            if cancel is not None:
                cancel.raise_if_cancelled("packing")
            idx = np.arange(start, min(n, start + 512))
            list(pool.map(encode, idx, data.table.crops(idx)))
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    arrays: dict[str, np.ndarray] = {
        "format": np.asarray(PACK_FORMAT),
        "blob": np.frombuffer(b"".join(blobs), dtype=np.uint8),
        "offsets": offsets,
        "labels": np.asarray(data.labels, dtype=np.int32),
        "identities": np.asarray(data.identities),
        "data_card": np.asarray(json.dumps(data_card)),
    }
    sources = _sources(data)
    if sources is not None:
        arrays["sources"] = np.frombuffer("\n".join(sources).encode("utf-8"), dtype=np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as fh:          # a unique temporary name: two packers never share one
        np.savez(fh, **arrays)
    return out


def _sources(data: Any) -> list[str] | None:
    """The source image of every row, when every set records them (alignment caches and packed sets do)."""
    sets = data.table.sets
    if any(len(getattr(s, "paths", [])) != len(s) for s in sets):
        return None
    names = [str(sets[int(s)].paths[int(r)]) for s, r in data.table.where]
    return None if any("\n" in name for name in names) else names
