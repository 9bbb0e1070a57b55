"""Similarity transform and the 112 x 112 warp, then alignment quality on real CFP and CelebA photos."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from faceapp.capture.images import read_image
from faceapp.vision.align import TEMPLATE_112, align_face, alignment_residual, similarity_transform, template, transform_points
from faceapp.vision.pipeline import FacePipeline
from faceapp.vision.profile import template_for


def _similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


def test_recovers_a_known_similarity_exactly() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 300, size=(5, 2))
    truth = _similarity(0.37, 23.0, 12.5, -40.0)
    dst = transform_points(truth, src)
    np.testing.assert_allclose(similarity_transform(src, dst), truth, atol=1e-9)


def test_least_squares_beats_nearby_transforms_on_noisy_points() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 200, size=(5, 2))
    dst = transform_points(_similarity(0.5, -10.0, 3.0, 4.0), src) + rng.normal(0, 2.0, size=(5, 2))
    best = similarity_transform(src, dst)

    def cost(m: np.ndarray) -> float:
        return float(((transform_points(m, src) - dst) ** 2).sum())

    for _ in range(200):
        s, ang, tx, ty = 0.5 + rng.normal(0, 0.01), -10.0 + rng.normal(0, 1.0), 3 + rng.normal(0, 1), 4 + rng.normal(0, 1)
        assert cost(best) <= cost(_similarity(s, ang, tx, ty)) + 1e-9


def test_never_reflects() -> None:
    mirrored = TEMPLATE_112 * np.array([-1.0, 1.0]) + np.array([112.0, 0.0])
    matrix = similarity_transform(mirrored, TEMPLATE_112)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_template_points_map_to_identity_and_sizes_scale() -> None:
    image = np.random.default_rng(2).integers(0, 255, size=(112, 112, 3), dtype=np.uint8)
    crop, matrix = align_face(image, TEMPLATE_112)
    np.testing.assert_allclose(matrix, np.hstack([np.eye(2), np.zeros((2, 1))]), atol=1e-6)
    assert np.array_equal(crop, image)
    crop224, m224 = align_face(image, TEMPLATE_112, size=224)
    assert crop224.shape == (224, 224, 3)
    np.testing.assert_allclose(m224[:, :2], 2 * np.eye(2), atol=1e-6)
    np.testing.assert_allclose(template(224), TEMPLATE_112 * 2, atol=1e-5)


def test_degenerate_points_are_rejected() -> None:
    with pytest.raises(ValueError, match="coincide"):
        similarity_transform(np.zeros((5, 2)), TEMPLATE_112)


def test_cfp_hand_labelled_eyes_land_near_the_template(pipeline: FacePipeline, cfp_sample: list) -> None:
    """Independent ground truth: warp CFP's labelled image-left eye centre (mean of corners 12 and 15)
    with the matrix found from MediaPipe's points; it must land within a few crop pixels of the
    template's left eye. On all 4,843 usable CFP frontal images (scripts/landmark_accuracy.py) the error is
    mean 1.74 px, median 1.60, p95 3.54 (crop is 112 px; a few mislabelled images reach 28 px)."""
    errors = []
    for _name, image, fid in cfp_sample:
        face = pipeline.detect(image)[0]
        aligned = pipeline.align(image, face)
        eye = transform_points(aligned.transform, ((fid[12] + fid[15]) / 2.0)[None])[0]
        errors.append(float(np.linalg.norm(eye - TEMPLATE_112[0])))
    print("crop eye errors (px): mean %.2f p90 %.2f" % (np.mean(errors), np.percentile(errors, 90)))
    assert np.mean(errors) < 2.5, errors
    assert np.percentile(errors, 90) < 4.0, errors


@pytest.mark.parametrize("which", ["standard", "turned"])
def test_celeba_crops_put_both_eyes_within_a_few_pixels(which: str, pipeline: FacePipeline,
                                                        turned_pipeline: FacePipeline, celeba: Path) -> None:
    """After the five-point fit, the detected eye centres sit within a few pixels of the template's.

    (The fit spreads the disagreement between a face's shape and the template over all five points.)
    Over 303 CelebA photos (every 20th): worst-eye error median 2.1 px, p90 4.6 px against the frontal
    template; the larger ones are turned heads, whose projected eye/mouth geometry differs from it. Checked for
    both pipelines: the default (every pose on the standard template, measured against it: median 2.1 px,
    p90 4.5 px on these 20) and ``template="turned"`` (heads past 25 degrees measured against the template
    turned with them: 2.0 / 3.8 px)."""
    files = sorted(celeba.glob("*/*.jpg"))[::300][:20]
    worst_eye = []
    for path in files:
        faces = (pipeline if which == "standard" else turned_pipeline).process(read_image(path))
        if not faces:       # about 4% of CelebA photos have no detectable face (docs/pipeline.md)
            continue
        assert faces[0].image.shape == (112, 112, 3)
        points = faces[0].face.five_points
        used = template() if which == "standard" else template_for(points)
        warped = transform_points(faces[0].transform, points)
        worst_eye.append(float(np.linalg.norm(warped[:2] - used[:2], axis=1).max()))
        assert alignment_residual(points, faces[0].transform, dst=used) < 8.0
    assert len(worst_eye) >= 18
    print("celeba worst-eye errors (px): median %.2f p90 %.2f" % (np.median(worst_eye), np.percentile(worst_eye, 90)))
    assert np.median(worst_eye) < 3.0, worst_eye
    assert np.percentile(worst_eye, 90) < 6.0, worst_eye


def test_the_default_pipeline_puts_every_pose_on_the_standard_template(pipeline: FacePipeline,
                                                                      turned_pipeline: FacePipeline, cfp: Path) -> None:
    """Pipeline version 3: frontal and profile faces alike are fitted to the standard five-point template
    (what public weights expect); the turned template only where asked for, and only for turned heads."""
    assert pipeline.template == "standard" and turned_pipeline.template == "turned"
    for rel in ("001/frontal/01", "001/profile/01", "002/profile/02"):
        image = read_image(cfp / "Data" / "Images" / f"{rel}.jpg")
        standard, turned = pipeline.process(image), turned_pipeline.process(image)
        assert standard and turned, rel
        points = standard[0].face.five_points
        np.testing.assert_allclose(standard[0].transform, similarity_transform(points, template()), atol=1e-6)
        if "frontal" in rel:
            np.testing.assert_array_equal(standard[0].image, turned[0].image)
        else:
            assert np.abs(standard[0].transform - turned[0].transform).max() > 1.0, rel
    with pytest.raises(ValueError, match="template must be one of"):
        FacePipeline("image", template="sideways")
