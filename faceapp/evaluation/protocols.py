"""Pair protocols for verification: LFW ``pairs.txt`` and CFP's official layout, read into one shape.

A ``PairProtocol`` lists each image once (``images``, absolute paths) and the pairs as indices into that
list, so each image is aligned and embedded once however many pairs use it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from faceapp.core.errors import DatasetError

CFP_PROTOCOLS = ("FF", "FP")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class PairProtocol:
    """Image pairs with same/different labels and fold ids.

    images: unique image paths; pairs: (M, 2) int indices into ``images``; same: (M,) bool;
    folds: (M,) int fold ids as the protocol numbers them (LFW 1..10, CFP 1..10); root: where the
    images were resolved from; name: e.g. "CFP-FP" or the pairs file name.
    """

    name: str
    root: Path
    images: tuple[Path, ...]
    pairs: np.ndarray
    same: np.ndarray
    folds: np.ndarray

    def __len__(self) -> int:
        return int(self.pairs.shape[0])

    @property
    def fold_ids(self) -> list[int]:
        return [int(f) for f in np.unique(self.folds)]

    def select_folds(self, folds: Iterable[int]) -> "PairProtocol":
        """Only the pairs of the given folds (images no pair uses are dropped)."""
        wanted = sorted({int(f) for f in folds})
        unknown = [f for f in wanted if f not in self.fold_ids]
        if unknown:
            raise DatasetError(f"{self.name}: no fold {unknown[0]} (folds are {self.fold_ids})")
        keep = np.isin(self.folds, wanted)
        used = np.unique(self.pairs[keep])
        remap = np.full(len(self.images), -1, dtype=np.int64)
        remap[used] = np.arange(used.size)
        return replace(self, name=f"{self.name} folds {','.join(map(str, wanted))}",
                       images=tuple(self.images[i] for i in used), pairs=remap[self.pairs[keep]],
                       same=self.same[keep], folds=self.folds[keep])

    def missing_images(self) -> list[Path]:
        """Images of the protocol that do not exist on disk, in protocol order."""
        return [p for p in self.images if not p.is_file()]

    def check_files(self, show: int = 5) -> None:
        """Raise ``DatasetError`` listing the first missing images, if any."""
        missing = self.missing_images()
        if missing:
            shown = ", ".join(str(p) for p in missing[:show])
            more = f" (and {len(missing) - show} more)" if len(missing) > show else ""
            raise DatasetError(f"{self.name}: {len(missing)} of {len(self.images)} images referenced by the "
                               f"pairs are missing under {self.root}: {shown}{more}")


class _ImageTable:
    """Collects unique paths in first-seen order."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.index: dict[Path, int] = {}

    def add(self, path: Path) -> int:
        if path not in self.index:
            self.index[path] = len(self.paths)
            self.paths.append(path)
        return self.index[path]


def _build(name: str, root: Path, table: _ImageTable, rows: Sequence[tuple[int, int, bool, int]]) -> PairProtocol:
    if not rows:
        raise DatasetError(f"{name}: the protocol holds no pairs")
    arr = np.asarray([(a, b) for a, b, _, _ in rows], dtype=np.int64)
    same = np.asarray([s for _, _, s, _ in rows], dtype=bool)
    folds = np.asarray([f for _, _, _, f in rows], dtype=np.int64)
    return PairProtocol(name=name, root=root, images=tuple(table.paths), pairs=arr, same=same, folds=folds)


def _lfw_image(root: Path, name: str, number: str, file: Path, line_no: int) -> Path:
    try:
        i = int(number)
    except ValueError:
        raise DatasetError(f"{file}:{line_no}: image number {number!r} is not an integer") from None
    path = root / name / f"{name}_{i:04d}.jpg"
    if not path.is_file():                      # same stem, another image format
        for suffix in IMAGE_SUFFIXES:
            other = path.with_suffix(suffix)
            if other.is_file():
                return other
    return path


def read_lfw_pairs(pairs_file: str | Path, root: str | Path, *, check: bool = True) -> PairProtocol:
    """Read an LFW-format ``pairs.txt``: header ``folds<TAB>n`` (or just ``n`` for one fold), then per fold
    n genuine lines ``name i j`` and n impostor lines ``name1 i name2 j``; images are
    ``root/name/name_000i.jpg`` (another image suffix with the same stem is accepted).

    Folds are numbered 1..folds. ``check`` raises ``DatasetError`` listing the first missing images.
    """
    file = Path(pairs_file)
    root = Path(root).expanduser().resolve()
    if not file.is_file():
        raise DatasetError(f"pairs file {file} does not exist")
    if not root.is_dir():
        raise DatasetError(f"image root {root} for {file} is not a folder")
    lines = [(n, line.split()) for n, line in enumerate(file.read_text(encoding="utf-8", errors="replace").splitlines(), 1)]
    lines = [(n, parts) for n, parts in lines if parts]
    if not lines:
        raise DatasetError(f"pairs file {file} is empty")
    header_no, header = lines[0]
    try:
        numbers = [int(x) for x in header]
    except ValueError:
        raise DatasetError(f"{file}:{header_no}: expected a header 'folds<TAB>pairs-per-kind', got {' '.join(header)!r}") from None
    if len(numbers) == 1:
        n_folds, per_kind = 1, numbers[0]
    elif len(numbers) == 2:
        n_folds, per_kind = numbers
    else:
        raise DatasetError(f"{file}:{header_no}: header has {len(numbers)} numbers, expected 1 or 2")
    body = lines[1:]
    expected = n_folds * per_kind * 2
    if len(body) != expected:
        raise DatasetError(f"{file}: header promises {n_folds} folds x {per_kind} x 2 = {expected} pairs, "
                           f"the file has {len(body)} pair lines")
    table = _ImageTable()
    rows: list[tuple[int, int, bool, int]] = []
    for k, (line_no, parts) in enumerate(body):
        fold = k // (2 * per_kind) + 1
        if len(parts) == 3:
            a = _lfw_image(root, parts[0], parts[1], file, line_no)
            b = _lfw_image(root, parts[0], parts[2], file, line_no)
            same = True
        elif len(parts) == 4:
            a = _lfw_image(root, parts[0], parts[1], file, line_no)
            b = _lfw_image(root, parts[2], parts[3], file, line_no)
            same = False
        else:
            raise DatasetError(f"{file}:{line_no}: expected 'name i j' or 'name1 i name2 j', got {' '.join(parts)!r}")
        rows.append((table.add(a), table.add(b), same, fold))
    protocol = _build(file.name, root, table, rows)
    if check:
        protocol.check_files()
    return protocol


def _cfp_protocol_dir(path: Path) -> Path:
    path = Path(path).expanduser().resolve()
    for candidate in (path, path / "Protocol", path.parent):
        if (candidate / "Pair_list_F.txt").is_file() and (candidate / "Split").is_dir():
            return candidate
    raise DatasetError(f"{path} is not a CFP folder: expected Protocol/Pair_list_F.txt and Protocol/Split/ "
                       "(give the cfp/ folder or cfp/Protocol/)")


def _read_pair_list(file: Path) -> dict[int, Path]:
    if not file.is_file():
        raise DatasetError(f"CFP pair list {file} does not exist")
    out: dict[int, Path] = {}
    for line_no, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetError(f"{file}:{line_no}: expected 'index path', got {line!r}")
        out[int(parts[0])] = (file.parent / parts[1]).resolve()
    return out


def read_cfp_protocol(cfp: str | Path, protocol: str = "FF", *, folds: Iterable[int] | None = None,
                      check: bool = True) -> PairProtocol:
    """Read CFP's official protocol: ``Pair_list_F/P.txt`` and ``Split/<FF|FP>/<01..10>/{same,diff}.txt``.

    ``cfp`` is the dataset folder or its ``Protocol/`` folder. In FF both indices point into Pair_list_F,
    in FP the second points into Pair_list_P. ``folds`` keeps only those folds (e.g. [9, 10]).
    """
    kind = protocol.upper()
    if kind not in CFP_PROTOCOLS:
        raise DatasetError(f"CFP protocol {protocol!r}: expected FF or FP")
    pdir = _cfp_protocol_dir(Path(cfp))
    first = _read_pair_list(pdir / "Pair_list_F.txt")
    second = first if kind == "FF" else _read_pair_list(pdir / "Pair_list_P.txt")
    split = pdir / "Split" / kind
    fold_dirs = sorted(d for d in split.iterdir() if d.is_dir() and d.name.isdigit()) if split.is_dir() else []
    if not fold_dirs:
        raise DatasetError(f"{split}: no fold folders 01..10")
    table = _ImageTable()
    rows: list[tuple[int, int, bool, int]] = []
    for fold_dir in fold_dirs:
        fold = int(fold_dir.name)
        for kind_file, same in (("same.txt", True), ("diff.txt", False)):
            file = fold_dir / kind_file
            if not file.is_file():
                raise DatasetError(f"CFP split file {file} does not exist")
            for line_no, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    i, j = (int(x) for x in line.replace(" ", "").split(","))
                except ValueError:
                    raise DatasetError(f"{file}:{line_no}: expected 'i,j', got {line!r}") from None
                if i not in first or j not in second:
                    raise DatasetError(f"{file}:{line_no}: index {i if i not in first else j} is not in the pair list")
                rows.append((table.add(first[i]), table.add(second[j]), same, fold))
    images_root = pdir.parent / "Data" / "Images"
    result = _build(f"CFP-{kind}", images_root if images_root.is_dir() else pdir.parent, table, rows)
    if folds is not None:
        result = result.select_folds(folds)
    if check:
        result.check_files()
    return result


def read_protocol(fmt: str, pairs: str | Path, root: str | Path | None = None, *, cfp_protocol: str = "FF",
                  folds: Iterable[int] | None = None, check: bool = True) -> PairProtocol:
    """Read a protocol by format name: ``"lfw"`` (pairs file + image root) or ``"cfp"`` (the CFP folder;
    ``pairs`` may be the cfp/ or cfp/Protocol/ folder, ``root`` is then ignored)."""
    fmt = fmt.lower()
    if fmt == "lfw":
        if root is None:
            root = Path(pairs).parent
        protocol = read_lfw_pairs(pairs, root, check=False)
        if folds is not None:
            protocol = protocol.select_folds(folds)
    elif fmt == "cfp":
        source = pairs if Path(pairs).exists() or root is None else root
        protocol = read_cfp_protocol(source, cfp_protocol, folds=folds, check=False)
    else:
        raise DatasetError(f"protocol format {fmt!r}: expected lfw or cfp")
    if check:
        protocol.check_files()
    return protocol
