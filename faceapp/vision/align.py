"""Five-point alignment onto the ArcFace 112 x 112 template ("many-to-one normalisation").

A least-squares similarity transform (rotation, uniform scale, translation; no reflection, no shear)
maps the five detected points onto the template; ``cv2.warpAffine`` resamples the crop. The closed form
is Umeyama's (1991), the same estimate insightface's ``norm_crop`` gets from scikit-image.
"""

from __future__ import annotations

import cv2
import numpy as np

#: left eye, right eye, nose tip, left mouth corner, right mouth corner (image left/right), 112 x 112 crop.
TEMPLATE_112: np.ndarray = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
TEMPLATE_112.setflags(write=False)


def template(size: int = 112) -> np.ndarray:
    """The five-point template scaled to a ``size`` x ``size`` crop."""
    return (TEMPLATE_112 * (size / 112.0)).astype(np.float32)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2 x 3 matrix of the similarity minimising sum |s R src_i + t - dst_i|^2 (Umeyama, no reflection)."""
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"need two matching point sets of at least 2 points, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0 ** 2).sum() / len(src)
    if var_s < 1e-12:
        raise ValueError("source points coincide: no similarity transform")
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = float((sig * d).sum() / var_s)
    trans = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, trans[:, None]]).astype(np.float64)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2 x 3 affine matrix to N x 2 points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ np.asarray(matrix, dtype=np.float64)[:, :2].T + np.asarray(matrix, dtype=np.float64)[:, 2]


def align_face(image: np.ndarray, five_points: np.ndarray, size: int = 112,
               dst: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``image`` so ``five_points`` land on the template (or ``dst``, e.g. a turned template): returns
    (size x size crop, 2 x 3 matrix)."""
    matrix = similarity_transform(five_points, template(size) if dst is None else dst)
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)
    return crop, matrix


def alignment_residual(five_points: np.ndarray, matrix: np.ndarray, size: int = 112,
                       dst: np.ndarray | None = None) -> float:
    """Mean distance (crop pixels) between the warped points and the template (or ``dst``, the template they
    were fitted to): how face-like the points are."""
    warped = transform_points(matrix, five_points)
    return float(np.linalg.norm(warped - (template(size) if dst is None else dst), axis=1).mean())
