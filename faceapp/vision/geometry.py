"""Geometry of MediaPipe's face mesh: which landmarks make the five points, and head pose from the
facial transformation matrix.

Landmark numbering is anatomical: 33/133 are the outer/inner corners of the subject's RIGHT eye, which
appears on the image's LEFT in an ordinary (unmirrored) photo; 362/263 the inner/outer corners of the
subject's left eye; 1 the nose tip; 61/291 the mouth corners on the image left/right. The five points are
returned in template order (image-left eye first) for an upright face; for a face rolled past 90 degrees
the anatomical order is kept, so the similarity warp still produces an upright crop.

Pose convention (degrees, checked in tests/vision/test_geometry.py):
  yaw   + = subject turned to THEIR left (nose towards the image right); a mirror image flips the sign;
  pitch + = looking up (chin raised);
  roll  + = head tilted clockwise in the image; a mirror image flips the sign.
"""

from __future__ import annotations

import math

import numpy as np

RIGHT_EYE_CORNERS = (33, 133)     # subject's right eye = image left
LEFT_EYE_CORNERS = (362, 263)     # subject's left eye = image right
RIGHT_IRIS, LEFT_IRIS = 468, 473
NOSE_TIP = 1
MOUTH_IMAGE_LEFT, MOUTH_IMAGE_RIGHT = 61, 291
CHIN = 152
NASION = 168


def five_points_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """5 x 2 float32 (left eye, right eye, nose tip, left mouth, right mouth) from 468/478 x >=2 landmarks."""
    pts = np.asarray(landmarks, dtype=np.float32)[:, :2]
    return np.stack(
        [
            pts[list(RIGHT_EYE_CORNERS)].mean(axis=0),
            pts[list(LEFT_EYE_CORNERS)].mean(axis=0),
            pts[NOSE_TIP],
            pts[MOUTH_IMAGE_LEFT],
            pts[MOUTH_IMAGE_RIGHT],
        ]
    ).astype(np.float32)


def pose_from_matrix(matrix: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from MediaPipe's 4 x 4 facial transformation matrix.

    The rotation part is decomposed as Rz(c) @ Ry(b) @ Rx(a) (the order of ``cv2.RQDecomp3x3``), then
    signed to the module's convention: yaw = b, pitch = -a, roll = -c.
    """
    rot = np.asarray(matrix, dtype=np.float64)[:3, :3]
    # remove any scale so the decomposition sees a pure rotation
    norms = np.linalg.norm(rot, axis=0)
    rot = rot / np.where(norms > 1e-9, norms, 1.0)
    b = math.degrees(math.asin(max(-1.0, min(1.0, -rot[2, 0]))))
    a = math.degrees(math.atan2(rot[2, 1], rot[2, 2]))
    c = math.degrees(math.atan2(rot[1, 0], rot[0, 0]))
    return (b, -a, -c)


def box_from_points(points: np.ndarray) -> tuple[float, float, float, float]:
    """Tight (x, y, w, h) box around N x >=2 points."""
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def interocular(five_points: np.ndarray) -> float:
    """Distance between the two eye centres (pixels)."""
    pts = np.asarray(five_points, dtype=np.float64)
    return float(np.linalg.norm(pts[1] - pts[0]))
