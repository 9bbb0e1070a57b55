"""Dataset listing on the real folders: ImageFolder layout, CFP layout with an identity filter."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceapp.core.errors import DatasetError
from faceapp.data.datasets import DatasetSpec, parse_identity_filter, scan_dataset


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


def test_exclude_leaves_out_named_identities(att, tmp_path):
    """People found in a test set (scripts/identity_overlap.py) are left out by name, range or file."""
    import json

    from faceapp.data.datasets import DatasetSpec, scan_dataset

    by_range = scan_dataset(DatasetSpec(str(att), identities="s1-s5", exclude="s2-s3"))
    assert sorted({i.identity for i in by_range.items}) == ["att_faces/s1", "att_faces/s4", "att_faces/s5"]
    prefixed = scan_dataset(DatasetSpec(str(att), identities="s1-s5", exclude="att_faces/s2,other_set/s3,s4"))
    assert sorted({i.identity for i in prefixed.items}) == ["att_faces/s1", "att_faces/s3", "att_faces/s5"]

    listing = tmp_path / "overlap.json"
    listing.write_text(json.dumps({"excluded": ["att_faces/s1", "other_set/s4", "s5"]}))
    by_file = scan_dataset(DatasetSpec(str(att), identities="s1-s5", exclude=f"@{listing}"))
    # s1 (this dataset's prefix) and s5 (no prefix) go; s4 belongs to another dataset's namespace and stays
    assert sorted({i.identity for i in by_file.items}) == ["att_faces/s2", "att_faces/s3", "att_faces/s4"]


def test_exclude_file_errors_name_the_file(att, tmp_path):
    import pytest

    from faceapp.core.errors import DatasetError
    from faceapp.data.datasets import DatasetSpec, scan_dataset

    with pytest.raises(DatasetError, match="missing.json"):
        scan_dataset(DatasetSpec(str(att), exclude=f"@{tmp_path / 'missing.json'}"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetError, match="bad.json.*excluded"):
        scan_dataset(DatasetSpec(str(att), exclude=f"@{bad}"))
