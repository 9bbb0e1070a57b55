"""Passive scorers on real NUAA photographs: crops at the published scales, live vs printed photos, weight files."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceapp.capture.images import read_image
from faceapp.core.errors import ModelAssetError
from faceapp.liveness.passive import PAD_MODELS, PassiveScorer, crop_box, crop_for_scale, find_pad_weights

from tests.liveness.conftest import nuaa_files


def test_crop_box_follows_the_upstream_rule() -> None:
    # a 100x100 face box centred in a 640x480 frame at scale 2.7 -> 270 px square about the centre
    assert crop_box(640, 480, (270, 190, 100, 100), 2.7) == (185, 105, 455, 375)
    # too large for the frame: the scale drops to fit the height, the square is shifted inside the frame
    x0, y0, x1, y1 = crop_box(640, 480, (10, 10, 150, 150), 4.0)
    assert (x0, y0) == (0, 0) and y1 == 479 and x1 - x0 == pytest.approx(y1 - y0, abs=1)


def test_crops_are_80px_bgr_at_each_models_scale(nuaa: Path, still_pipeline) -> None:  # noqa: ANN001
    # NUAA's 320x240 frames are filled by the face (both scales clamp to the frame): framed in a wider border
    image = cv2.copyMakeBorder(read_image(nuaa_files(nuaa, "live", "0001", 1)[0]), 300, 300, 300, 300,
                               cv2.BORDER_REFLECT)
    face = still_pipeline.detect(image)[0]
    small, large = (crop_for_scale(image, face.box, s.scale) for s in PAD_MODELS)
    assert small.shape == large.shape == (80, 80, 3)
    assert PAD_MODELS[0].scale < PAD_MODELS[1].scale
    assert not np.array_equal(small, large)     # the 4.0 crop shows more background


def test_live_faces_score_above_printed_photos_of_the_same_people(nuaa: Path, still_pipeline, scorer) -> None:  # noqa: ANN001
    scores: dict[str, list[float]] = {"live": [], "attack": []}
    for subject in ("0002", "0006"):
        for kind in ("live", "print_still", "print_bend"):
            for path in nuaa_files(nuaa, kind, subject, 2):
                image = read_image(path)
                faces = still_pipeline.detect(image)
                assert len(faces) == 1, path
                score = scorer.score(image, faces[0].box)
                assert set(score.per_model) == {s.name for s in PAD_MODELS}
                assert score.live == pytest.approx(np.mean(list(score.per_model.values())))
                scores["live" if kind == "live" else "attack"].append(score.live)
    assert min(scores["live"]) > max(scores["attack"])
    assert max(scores["attack"]) < 0.5 < min(scores["live"])


def test_batched_scores_equal_single_ones(nuaa: Path, still_pipeline, scorer) -> None:  # noqa: ANN001
    items = []
    for path in nuaa_files(nuaa, "live", "0003", 2) + nuaa_files(nuaa, "print_rotate", "0003", 1):
        image = read_image(path)
        items.append((image, still_pipeline.detect(image)[0].box))
    batched = scorer.score_many(items)
    for (image, box), got in zip(items, batched):
        assert got.live == pytest.approx(scorer.score(image, box).live, abs=1e-5)


def test_missing_weights_name_the_file_and_the_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("faceapp.liveness.passive.pad_models_dirs", lambda option=None: [tmp_path])
    with pytest.raises(ModelAssetError, match=r"2.7_80x80_MiniFASNetV2.pth not found.*FACEAPP_PAD_MODEL_DIR"):
        PassiveScorer()


def test_a_corrupt_weight_file_is_refused_by_its_hash(tmp_path: Path) -> None:
    (tmp_path / PAD_MODELS[0].filename).write_bytes(b"not a state dict")
    assert find_pad_weights(PAD_MODELS[0], tmp_path) == tmp_path / PAD_MODELS[0].filename
    with pytest.raises(ModelAssetError, match="SHA-256"):
        PassiveScorer(tmp_path)


def test_the_option_folder_is_searched_first(tmp_path: Path) -> None:
    for spec in PAD_MODELS:
        shutil.copyfile(find_pad_weights(spec), tmp_path / spec.filename)
    scorer = PassiveScorer(tmp_path)
    assert all(p.parent == tmp_path for p in scorer.paths)


def test_onnxruntime_engine_scores_as_torch_does(nuaa: Path, still_pipeline, scorer) -> None:  # noqa: ANN001
    torch_scorer = PassiveScorer(engine="torch")
    assert scorer.engine == "onnxruntime" and torch_scorer.engine == "torch" and scorer.id == torch_scorer.id
    items = []
    for kind in ("live", "print_still"):
        for path in nuaa_files(nuaa, kind, "0004", 2):
            image = read_image(path)
            items.append((image, still_pipeline.detect(image)[0].box))
    fast, slow = scorer.score_many(items), torch_scorer.score_many(items)
    for a, b in zip(fast, slow):
        assert a.live == pytest.approx(b.live, abs=1e-4)
        assert a.per_model == pytest.approx(b.per_model, abs=1e-4)
