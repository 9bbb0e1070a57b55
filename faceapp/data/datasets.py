"""Dataset folders: what one is (``DatasetSpec``) and the listing of its images: identity sub-folders or
the CFP layout.

Listing reads no pixels; unreadable files are found (and counted) by the alignment cache. Identities
are namespaced by the dataset name (``"celeba_subset/1042"``) so several datasets never share a label.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from faceapp.capture.images import is_image_path
from faceapp.core.errors import DatasetError


LAYOUTS = ("auto", "folder", "cfp", "pack")


@dataclass
class DatasetSpec:
    """One training dataset folder, or a pack file of aligned crops.

    layout: "folder" (``<identity>/<images>``), "cfp" (``Data/Images/NNN/{frontal,profile}``), "pack" (an
    ``.npz`` written by ``faceapp.data.pack.write_pack`` / scripts/pack_training_crops.py: crops aligned
    when packed, identities named as packed; filter items may name one packed dataset, ``cfp/301-400``) or
    "auto" (a pack for an ``.npz`` path, else the CFP layout when found, else "folder").
    name: namespace of its identities (default: the folder name), so two datasets never share a label.
    identities: optional filter, e.g. "001-400" (numeric ranges compare numerically) or "s1,s2".
    exclude: identities to leave out, same syntax, or "@FILE" naming a JSON file with an "excluded" list
    (e.g. people found in a test set by scripts/identity_overlap.py) or a text file with one name per line;
    names may carry the dataset prefix ("celeba_lowres/06102").
    pad: fraction of the image side added on every border (edge-replicated) before detection;
    -1 = automatic: none, with one 25% retry when no face is found (helps on tight crops, celeba_lowres).
    """

    path: str
    name: str = ""
    layout: str = "auto"
    identities: str = ""
    exclude: str = ""
    include_profile: bool = True
    pad: float = -1.0
    max_per_identity: int = 0


@dataclass(frozen=True)
class ImageItem:
    """One image file and its (namespaced) identity."""

    path: Path
    identity: str


@dataclass
class DatasetListing:
    """The images of one dataset folder, in a stable order (identity, then file name)."""

    name: str
    root: Path
    layout: str
    items: list[ImageItem] = field(default_factory=list)

    @property
    def identities(self) -> list[str]:
        return sorted({item.identity for item in self.items})

    def counts(self) -> dict[str, int]:
        """identity -> number of images."""
        out: dict[str, int] = {}
        for item in self.items:
            out[item.identity] = out.get(item.identity, 0) + 1
        return out


def detect_layout(root: Path) -> str:
    """"cfp" when the folder (or its Data/Images) holds NNN/frontal|profile folders, else "folder"."""
    images = cfp_images_dir(root)
    return "cfp" if images is not None else "folder"


def cfp_images_dir(root: Path) -> Path | None:
    """The ``Data/Images`` folder of a CFP-layout dataset given the dataset or the images folder."""
    for candidate in (root / "Data" / "Images", root):
        if candidate.is_dir():
            first = next((d for d in sorted(candidate.iterdir()) if d.is_dir()), None)
            if first is not None and (first / "frontal").is_dir():
                return candidate
    return None


_RANGE = re.compile(r"^([^\d,-]*)(\d+)\s*-\s*\1?(\d+)$")
_NUMBERED = re.compile(r"^([^\d]*)(\d+)$")
Range = tuple[str, int, int]


def parse_identity_filter(text: str) -> tuple[list[Range], set[str]]:
    """"001-400,450,s1-s8,bob" -> ([("", 1, 400), ("", 450, 450), ("s", 1, 8)], {"bob"}).

    Ranges compare numerically after an optional common prefix ("001" and "1" both match 1); other
    items are exact folder names.
    """
    ranges: list[Range] = []
    names: set[str] = set()
    for part in (p.replace(" ", "") for p in text.split(",")):
        if not part:
            continue
        match = _RANGE.match(part)
        if match:
            prefix, low, high = match.group(1), int(match.group(2)), int(match.group(3))
            if low > high:
                raise DatasetError(f"identity filter {text!r}: range {part!r} runs backwards")
            ranges.append((prefix, low, high))
        elif part.isdigit():
            ranges.append(("", int(part), int(part)))
        else:
            names.add(part)
    return ranges, names


def identity_selected(name: str, ranges: list[Range], names: set[str]) -> bool:
    """Whether identity folder ``name`` is named by a parsed filter (``parse_identity_filter``)."""
    if name in names:
        return True
    match = _NUMBERED.match(name)
    if not match:
        return False
    prefix, number = match.group(1), int(match.group(2))
    return any(prefix == p and low <= number <= high for p, low, high in ranges)


def read_exclusions(text: str, dataset: str) -> tuple[list[Range], set[str]]:
    """The identities an ``exclude`` setting names: a filter like ``identities``, or ``@FILE`` (JSON with an
    "excluded" list, or one name per line). A ``<dataset>/`` prefix is dropped; other datasets' names are
    ignored."""
    if not text.startswith("@"):
        mine = [short for owner, _, short in (part.strip().rpartition("/") for part in text.split(","))
                if not owner or owner == dataset]
        return parse_identity_filter(",".join(mine))
    path = Path(text[1:]).expanduser()
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"exclusion file {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".json":
        try:
            entries = json.loads(raw)
            entries = entries["excluded"] if isinstance(entries, dict) else entries
        except (json.JSONDecodeError, KeyError, TypeError):
            raise DatasetError(f"exclusion file {path}: expected JSON with an \"excluded\" list of names") from None
    else:
        entries = [line.strip() for line in raw.splitlines() if line.strip() and not line.startswith("#")]
    names = set()
    for entry in map(str, entries):
        owner, _, short = entry.rpartition("/")
        if not owner or owner == dataset:
            names.add(short)
    return [], names


def scan_dataset(spec: DatasetSpec) -> DatasetListing:
    """List a dataset folder's images with namespaced identities (``DatasetError`` if unusable)."""
    root = Path(spec.path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist or is not a folder")
    root = root.resolve()
    layout = detect_layout(root) if spec.layout == "auto" else spec.layout
    name = spec.name or root.name
    ranges, names = parse_identity_filter(spec.identities) if spec.identities else ([], set())
    ex_ranges, ex_names = read_exclusions(spec.exclude, name) if spec.exclude else ([], set())
    if layout == "cfp":
        images_root = cfp_images_dir(root)
        if images_root is None:
            raise DatasetError(f"dataset folder {root} is not in the CFP layout (Data/Images/NNN/frontal/)")
        kinds = ("frontal", "profile") if spec.include_profile else ("frontal",)
        folders = [(d.name, [d / k for k in kinds]) for d in sorted(images_root.iterdir()) if d.is_dir()]
    else:
        folders = [(d.name, [d]) for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    listing = DatasetListing(name=name, root=root, layout=layout)
    for identity, dirs in folders:
        if spec.identities and not identity_selected(identity, ranges, names):
            continue
        if spec.exclude and identity_selected(identity, ex_ranges, ex_names):
            continue
        files: list[Path] = []
        for d in dirs:
            if d.is_dir():
                files.extend(sorted(p for p in d.rglob("*") if p.is_file() and is_image_path(p)))
        if spec.max_per_identity > 0:
            files = files[: spec.max_per_identity]
        listing.items.extend(ImageItem(path=p, identity=f"{name}/{identity}") for p in files)
    if not listing.items:
        what = "identity sub-folders holding images" if layout == "folder" else "CFP images"
        filt = f" matching the identity filter {spec.identities!r}" if spec.identities else ""
        raise DatasetError(f"dataset folder {root} has no {what}{filt} (expected <identity>/<image> files)")
    return listing
