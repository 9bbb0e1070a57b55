"""Packed crops (faceapp.data.pack): filters and exclusions as for dataset folders, a lossless round
trip through write_pack, clear errors for what is not a pack."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceapp.core.errors import DatasetError
from faceapp.core.progress import run_to_completion
from faceapp.data.datasets import DatasetSpec
from faceapp.data.labelled import assemble
from faceapp.data.pack import is_pack, load_pack, read_pack, scan_pack, write_pack


def test_exclusions_and_filters_as_for_folders(att_pack: Path, tmp_path: Path) -> None:
    packed = read_pack(att_pack, exclude="att/3-5", threads=2)
    assert packed.crops.shape == (90, 112, 112, 3) and packed.crops.dtype == np.uint8
    assert sorted(set(packed.identities)) == [f"att/{i:03d}" for i in (1, 2, 6, 7, 8, 9, 10, 11, 12)]
    assert packed.packed[0]["name"] == "att" and packed.paths == []          # an early pack: no sources
    assert sorted(set(read_pack(att_pack, exclude="3-5").identities)) == sorted(set(packed.identities))  # unprefixed
    assert len(read_pack(att_pack, exclude="other/3-5")) == 120               # another dataset's names: ignored
    listing = scan_pack(DatasetSpec(path=str(att_pack), identities="att/1-4,9", exclude="2", max_per_identity=3))
    assert listing.counts() == {"att/001": 3, "att/003": 3, "att/004": 3, "att/009": 3}
    assert listing.layout == "pack" and listing.name == "att" and listing.namespaces == {"att"}
    (tmp_path / "overlap.json").write_text(json.dumps({"excluded": ["att/011", "other/012", "012"]}))
    left = read_pack(att_pack, exclude=f"@{tmp_path / 'overlap.json'}")
    assert sorted(set(left.identities))[-1] == "att/010"                      # 011 and the unprefixed 012 went
    data = assemble([packed])
    assert data.num_classes == 9 and len(data) == 90 and data.identities[0] == "att/001"
    assert np.array_equal(data.table.crops(np.arange(10)), packed.crops[:10])


def test_write_read_round_trip(att_pack: Path, tmp_path: Path) -> None:
    """Lossless (PNG) to compare pixels; the labels, names, card and sources survive, WebP is far smaller."""
    source = read_pack(att_pack, exclude="att/12")
    source.paths = [Path(f"/data/att/{name}/{i}.pgm") for i, name in enumerate(source.identities)]
    data = assemble([source])
    card = [{"name": "att", "path": "/data/att", "layout": "folder"}]
    out = write_pack(tmp_path / "sub" / "p.npz", data, card, fmt="png")
    assert out.is_file() and not list(out.parent.glob("*.part")) and not list(out.parent.glob(".*.tmp"))
    back = read_pack(out)
    assert np.array_equal(back.crops, data.table.crops(np.arange(len(data))))
    assert back.identities == [data.identities[label] for label in data.labels]
    assert back.packed == card and back.paths == source.paths
    assert is_pack(DatasetSpec(path=str(out))) and not is_pack(DatasetSpec(path=str(tmp_path)))
    webp = write_pack(tmp_path / "w.npz", data, card, quality=80)
    assert webp.stat().st_size < out.stat().st_size / 2
    assert np.abs(read_pack(webp).crops.astype(int) - back.crops).mean() < 6          # lossy, but close


def test_bad_packs_are_refused(att_pack: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        scan_pack(DatasetSpec(path=str(tmp_path / "none.npz")))
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DatasetError, match="not a FaceApp pack: it lacks blob"):
        scan_pack(DatasetSpec(path=str(tmp_path / "other.npz")))
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DatasetError, match="cannot be read"):
        scan_pack(DatasetSpec(path=str(tmp_path / "text.npz")))
    with pytest.raises(DatasetError, match="no crops left after the filters"):
        scan_pack(DatasetSpec(path=str(att_pack), identities="att/20-30"))
    with pytest.raises(DatasetError, match="is a folder"):
        scan_pack(DatasetSpec(path=str(tmp_path), layout="pack"))
    with pytest.raises(DatasetError, match="include_profile"):
        scan_pack(DatasetSpec(path=str(att_pack), include_profile=False))
    z = dict(np.load(att_pack))
    z["blob"] = z["blob"].copy()
    z["blob"][z["offsets"][5]:z["offsets"][6]] = 0                           # one crop's bytes destroyed
    np.savez(tmp_path / "broken.npz", **z)
    with pytest.raises(DatasetError, match="crop 5 does not decode"):
        run_to_completion(load_pack(scan_pack(DatasetSpec(path=str(tmp_path / "broken.npz"))), threads=1))


def test_the_trainer_tab_summarises_a_pack(att_pack: Path) -> None:
    from faceapp.services.dataset_summary import summarize_dataset

    summary = summarize_dataset(DatasetSpec(path=str(att_pack), exclude="att/1-2", max_per_identity=4))
    assert (summary.layout, summary.identities, summary.images, summary.cache_state) == ("pack", 10, 40, "packed")
    assert "nothing to align" in summary.describe()
