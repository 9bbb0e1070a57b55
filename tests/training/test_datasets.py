"""Dataset listing on the real folders: ImageFolder layout, CFP layout with an identity filter."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceapp.core.errors import DatasetError
from faceapp.training.config import DatasetSpec
from faceapp.training.datasets import parse_identity_filter, scan_dataset


def test_folder_layout(att: Path) -> None:
    listing = scan_dataset(DatasetSpec(path=str(att), identities="s1-s3"))
    assert listing.layout == "folder" and listing.name == "att_faces"
    assert listing.identities == ["att_faces/s1", "att_faces/s2", "att_faces/s3"]
    assert len(listing.items) == 30 and all(item.path.suffix == ".pgm" for item in listing.items)
    capped = scan_dataset(DatasetSpec(path=str(att), identities="s10,s2", max_per_identity=4))
    assert capped.counts() == {"att_faces/s10": 4, "att_faces/s2": 4}


def test_cfp_layout_with_filter(cfp: Path) -> None:
    listing = scan_dataset(DatasetSpec(path=str(cfp), name="cfp", identities="001-003"))
    assert listing.layout == "cfp" and listing.identities == ["cfp/001", "cfp/002", "cfp/003"]
    assert len(listing.items) == 3 * 14
    frontal = scan_dataset(DatasetSpec(path=str(cfp), identities="400", include_profile=False))
    assert len(frontal.items) == 10 and all(i.path.parent.name == "frontal" for i in frontal.items)


def test_identity_filter_parsing() -> None:
    assert parse_identity_filter("001-400, 450,s1-s8,bob") == ([("", 1, 400), ("", 450, 450), ("s", 1, 8)], {"bob"})
    with pytest.raises(DatasetError, match="backwards"):
        parse_identity_filter("9-1")


def test_empty_and_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        scan_dataset(DatasetSpec(path=str(tmp_path / "nope")))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="no identity sub-folders holding images"):
        scan_dataset(DatasetSpec(path=str(tmp_path)))
