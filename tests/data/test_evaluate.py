"""Model evaluation end to end (real alignment, real Embedder): failed images are counted, never dropped."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceapp.core.errors import DatasetError
from faceapp.core.progress import run_to_completion
from faceapp.data import DatasetSpec, evaluate, evaluate_identification
from faceapp.embedding import Embedder


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder.untrained("tiny", 32)


def test_failed_images_count_as_errors(att: Path, mediapipe_models: Path, tmp_path: Path, embedder: Embedder) -> None:
    root = tmp_path / "lfw"
    for person in ("s1", "s2", "s3"):
        (root / person).mkdir(parents=True)
        for i in (1, 2, 3):
            shutil.copy(att / person / f"{i}.pgm", root / person / f"{person}_{i:04d}.pgm")
    (root / "blank").mkdir()
    cv2.imwrite(str(root / "blank" / "blank_0001.png"), np.full((112, 92, 3), 90, np.uint8))
    lines = ["1\t4", "s1\t1\t2", "s2\t1\t3", "s3\t2\t3", "s1\t1\t3",
             "s1\t1\ts2\t1", "s2\t2\ts3\t1", "blank\t1\ts3\t3", "s1\t2\tblank\t1"]
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    events = []
    report = run_to_completion(evaluate(embedder, "lfw", tmp_path / "pairs.txt", root), events.append)
    assert {e.stage for e in events} == {"align", "embed"}
    assert report.n_pairs == 8 and report.n_images == 10
    assert report.n_failed_images == 1 and report.n_failed_pairs == 2
    assert report.optimistic and report.accuracy <= 6 / 8            # the two failed pairs are wrong
    assert report.accuracy_faces_only is not None
    assert report.extra["model"] == embedder.model_id and report.extra["trained"] is False
    assert "1 of 10 images" in report.summary()


def test_missing_protocol_images(att: Path, tmp_path: Path, embedder: Embedder) -> None:
    (tmp_path / "pairs.txt").write_text("1\t1\ns1\t1\t2\ns1\t1\ts2\t1\n")
    with pytest.raises(DatasetError, match="missing under"):
        run_to_completion(evaluate(embedder, "lfw", tmp_path / "pairs.txt", tmp_path))


def test_identification_rank_k(att: Path, mediapipe_models: Path, embedder: Embedder) -> None:
    report = run_to_completion(evaluate_identification(embedder, DatasetSpec(path=str(att), identities="s1-s5"),
                                                       n_gallery=2))
    assert (report.n_identities, report.n_gallery, report.n_probes, report.n_failed_probes) == (5, 10, 40, 0)
    assert report.rank5 == 1.0 and 0.0 <= report.rank1 <= 1.0     # five identities: rank 5 always hits
