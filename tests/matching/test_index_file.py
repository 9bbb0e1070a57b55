"""The persisted FAISS index: reused only when header and content digest match; foreign, stale and damaged
files are refused with the file named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceapp.matching.ann import FaissIndex
from faceapp.matching.index_file import IndexFileError, index_path, load_index, read_header, save_index
from tests.matching.test_ann import clustered


def gallery(model_id: str = "m@1", dim: int = 32) -> tuple[FaissIndex, np.ndarray]:
    labels, rows, probes = clustered(200, dim=dim)
    index = FaissIndex(model_id, dim, kind="hnsw")
    index.add(np.arange(labels.size) + 1, labels, rows)
    return index, probes


def reloaded(model_id: str = "m@1", dim: int = 32) -> FaissIndex:
    """The same rows as ``gallery`` read again (as from the database), no snapshot."""
    return gallery(model_id, dim)[0]


def test_round_trip_gives_the_same_answers(tmp_path: Path) -> None:
    built, probes = gallery()
    built.build()
    path = save_index(tmp_path / "m.faiss", built)
    header = read_header(path)
    assert (header["model_id"], header["dim"], header["kind"], header["templates"]) == ("m@1", 32, "hnsw", 1000)
    fresh = reloaded()
    load_index(path, fresh)
    assert fresh.built and fresh.kind == "hnsw"
    for probe in probes[:50]:
        assert fresh.top_identities(probe, 5) == built.top_identities(probe, 5)


def test_rows_added_after_saving_keep_the_file_valid(tmp_path: Path) -> None:
    built, _ = gallery()
    built.build()
    path = save_index(tmp_path / "m.faiss", built)
    fresh = reloaded()
    fresh.add([5000], [777], np.ones((1, 32), dtype=np.float32))
    load_index(path, fresh)
    assert fresh.changes_since_build() == (1, 0)
    assert fresh.top_identities(np.ones(32, dtype=np.float32), 1)[0][0] == 777


@pytest.mark.parametrize("model_id, dim, message", [("other@2", 32, "built for model m@1"),
                                                    ("m@1", 16, r"m@1 \(32 values\)")])
def test_a_file_of_another_model_or_dimension_is_refused(tmp_path: Path, model_id: str, dim: int, message: str) -> None:
    built, _ = gallery()
    built.build()
    path = save_index(tmp_path / "m.faiss", built)
    other = reloaded(model_id, dim)
    with pytest.raises(IndexFileError, match=message) as caught:
        load_index(path, other)
    assert str(path) in str(caught.value) and not other.built


def test_changed_or_deleted_rows_make_the_file_stale(tmp_path: Path) -> None:
    built, _ = gallery()
    built.build()
    path = save_index(tmp_path / "m.faiss", built)
    changed = reloaded()
    changed.remove_templates([7])
    changed.add([7], [0], np.ones((1, 32), dtype=np.float32))      # same id, other content
    with pytest.raises(IndexFileError, match="stale"):
        load_index(path, changed)
    deleted = reloaded()
    deleted.remove_templates([3])
    with pytest.raises(IndexFileError, match="stale"):
        load_index(path, deleted)
    assert not changed.built and not deleted.built


@pytest.mark.parametrize("damage", ["truncate", "flip", "signature", "header"])
def test_a_damaged_file_is_refused_with_its_name(tmp_path: Path, damage: str) -> None:
    built, _ = gallery()
    built.build()
    path = save_index(tmp_path / "m.faiss", built)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-2000:] = bytes(2000)                         # FAISS payload overwritten
    elif damage == "signature":
        data[:7] = b"GARBAGE"
    else:
        start = data.index(b"\n") + 1
        data[start:start + 10] = b"{not json!"
    path.write_bytes(bytes(data))
    fresh = reloaded()
    with pytest.raises(IndexFileError) as caught:
        load_index(path, fresh)
    assert str(path) in str(caught.value) and not fresh.built


def test_index_path_sits_beside_a_sqlite_file_else_in_the_cache(tmp_path: Path) -> None:
    assert index_path(tmp_path / "g.db", "sqlite:///g.db", "default@abc", tmp_path / "c") == \
        tmp_path / "g.db.index" / "default_abc.faiss"
    remote = index_path(None, "postgresql://u@h/db", "default@abc", tmp_path / "c")
    assert remote.parent.parent == tmp_path / "c" / "indexes" and remote.name == "default_abc.faiss"
