"""Protocol readers on the real CFP layout and on a tiny LFW-format file written from AT&T images."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from faceapp.core.errors import DatasetError
from faceapp.evaluation.protocols import read_cfp_protocol, read_lfw_pairs, read_protocol


def _lfw_fixture(att: Path, tmp: Path, pairs_text: str) -> tuple[Path, Path]:
    root = tmp / "lfw"
    for person in ("s1", "s2", "s3"):
        (root / person).mkdir(parents=True)
        for i in (1, 2):
            shutil.copy(att / person / f"{i}.pgm", root / person / f"{person}_{i:04d}.pgm")
    pairs = tmp / "pairs.txt"
    pairs.write_text(pairs_text)
    return pairs, root


def test_lfw_two_folds(att: Path, tmp_path: Path) -> None:
    text = "2\t1\ns1\t1\t2\ns1\t1\ts2\t1\ns3\t1\t2\ns2\t2\ts3\t2\n"
    pairs, root = _lfw_fixture(att, tmp_path, text)
    proto = read_lfw_pairs(pairs, root)
    assert len(proto) == 4 and proto.same.tolist() == [True, False, True, False]
    assert proto.folds.tolist() == [1, 1, 2, 2]
    assert len(proto.images) == 6                    # s1_0001 used twice, listed once
    assert proto.images[0] == root.resolve() / "s1" / "s1_0001.pgm"
    assert proto.images[proto.pairs[1, 1]].name == "s2_0001.pgm"
    only2 = proto.select_folds([2])
    assert len(only2) == 2 and len(only2.images) == 3 and only2.pairs.max() == 2


def test_lfw_missing_images_listed(att: Path, tmp_path: Path) -> None:
    pairs, root = _lfw_fixture(att, tmp_path, "1\ns1\t1\t7\ns9\t1\ts2\t1\n")
    with pytest.raises(DatasetError, match=r"2 of 4 images .*s1_0007\.jpg.*s9_0001\.jpg"):
        read_lfw_pairs(pairs, root)


def test_lfw_bad_header_and_counts(att: Path, tmp_path: Path) -> None:
    pairs, root = _lfw_fixture(att, tmp_path, "10\t300\ns1\t1\t2\n")
    with pytest.raises(DatasetError, match="promises 10 folds x 300"):
        read_lfw_pairs(pairs, root)
    pairs.write_text("ten\n")
    with pytest.raises(DatasetError, match="pairs.txt:1"):
        read_lfw_pairs(pairs, root)


def test_cfp_official_protocol(cfp: Path) -> None:
    fp = read_cfp_protocol(cfp, "FP")
    assert len(fp) == 7000 and int(fp.same.sum()) == 3500 and fp.fold_ids == list(range(1, 11))
    first, second = fp.images[fp.pairs[0, 0]], fp.images[fp.pairs[0, 1]]
    assert first.parent.name == "frontal" and second.parent.name == "profile"
    # fold k holds people 50(k-1)+1 .. 50k
    last = fp.select_folds([9, 10])
    people = {int(p.parts[-3]) for p in last.images}
    assert min(people) >= 401 and max(people) <= 500 and len(last) == 1400
    ff = read_protocol("cfp", cfp / "Protocol", cfp_protocol="FF")
    assert all(p.parent.name == "frontal" for p in ff.images)


def test_cfp_bad_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a CFP folder"):
        read_cfp_protocol(tmp_path, "FF")
    with pytest.raises(DatasetError, match="expected FF or FP"):
        read_cfp_protocol(tmp_path, "PP")
