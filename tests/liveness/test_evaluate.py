"""ISO/IEC 30107-3 rates recomputed by hand, the subject split, and a run on real NUAA images."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceapp.core.errors import DatasetError
from faceapp.liveness.evaluate import Scored, nuaa_report, pad_metrics, score_folder, threshold_at_bpcer
from faceapp.liveness.report import write_report


def _s(kind: str, subject: str, score: float | None) -> Scored:
    return Scored(kind, subject, f"{kind}/{subject}", score)


def test_apcer_per_kind_and_bpcer_by_hand() -> None:
    scored = [_s("live", "1", 0.9), _s("live", "1", 0.4), _s("live", "2", 0.8), _s("live", "2", None),
              _s("print_still", "1", 0.7), _s("print_still", "2", 0.1),
              _s("print_bend", "1", 0.2), _s("print_bend", "2", 0.3), _s("print_bend", "2", None)]
    m = pad_metrics(scored, 0.5)
    assert m["apcer"] == {"print_bend": 0.0, "print_still": 0.5}
    assert m["bpcer"] == pytest.approx(1 / 3)
    assert m["apcer_max"] == 0.5
    assert m["no_face"] == {"print_bend": 1, "print_still": 0, "live": 1}
    assert m["subjects"] == ["1", "2"]


def test_threshold_at_bpcer_never_exceeds_the_target() -> None:
    live = [0.1, 0.5, 0.6, 0.7, 0.8, 0.9, 0.92, 0.95, 0.97, 0.99]
    t = threshold_at_bpcer(live, 0.1)
    assert sum(v < t for v in live) / len(live) <= 0.1
    assert t == 0.5
    assert threshold_at_bpcer(live, 0.0) == 0.1


def test_threshold_is_chosen_on_other_subjects_than_reported() -> None:
    scored = [_s("live", "a", 0.2), _s("live", "a", 0.9), _s("live", "b", 0.3),
              _s("live", "c", 0.95), _s("live", "d", 0.6), _s("print_still", "c", 0.5), _s("print_still", "d", 0.1)]
    report = nuaa_report(scored, target_bpcer=0.0)
    assert report["calibration_subjects"] == ["a", "b"] and report["test_subjects"] == ["c", "d"]
    assert report["threshold"] == 0.2                   # from a and b only
    assert report["test"]["apcer"]["print_still"] == 0.5
    with pytest.raises(DatasetError, match="two subjects"):
        nuaa_report([_s("live", "a", 0.5)])


def test_score_folder_on_real_nuaa_and_the_report_files(nuaa: Path, still_pipeline, scorer, tmp_path: Path) -> None:  # noqa: ANN001
    job = score_folder(nuaa, scorer, still_pipeline, every=60)
    progress = []
    try:
        while True:
            progress.append(next(job))
    except StopIteration as stop:
        scored = stop.value
    assert progress[-1][0] == progress[-1][1] == len(scored) >= 10
    assert {s.kind for s in scored} == {"live", "print_bend", "print_rotate", "print_still"}
    result = {"pad_model": scorer.id, "nuaa": nuaa_report(scored)}
    paths = write_report(result, tmp_path, scored)
    md = (tmp_path / "liveness_eval.md").read_text()
    assert "| print_still |" in md and "screen replay" in md and "BPCER" in md
    assert (tmp_path / "liveness_det.png").read_bytes()[:4] == b"\x89PNG"
    assert len(paths) == 3


def test_a_folder_without_live_images_is_refused(tmp_path: Path) -> None:
    (tmp_path / "print").mkdir()
    with pytest.raises(DatasetError, match="'live' folder"):
        next(score_folder(tmp_path, None, None))
