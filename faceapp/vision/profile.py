"""Profile faces: find the turned heads the landmarker misses, and align turned heads sensibly.

Finding (``ProfileSearch``; stills only, run by ``FacePipeline`` when nothing else found a face).
MediaPipe's FaceLandmarker misses strong profiles at its built-in detection stage (553 of CFP's 2,000
profile photos), yet the stand-alone BlazeFace detector (``face_detection_short_range.tflite``) boxes 549
of those 553, and the landmark model works on most of them once it is shown the region. So BlazeFace
proposes boxes, and for each the landmarker (IMAGE mode, one face, confidence 0.1) is run on a square
region around the box (2.6 then 2.0 times its side, padded with black where it leaves the image), tried
as is, mirrored and turned by +-20 degrees (``REGION_TRIES``) until one try finds a plausible face (centred
in the box, not much smaller, a turned head, not lying on its side: the checks that keep chests, arms and
hands out); its 478 landmarks, pose and blendshapes are mapped back to the image (a mirrored try swaps the
mesh's left and right through the canonical mesh's symmetry). Such faces carry ``Detector.LANDMARKER_ROI``
and the BlazeFace score of their box. When every try fails, a box scoring at least 0.7 alone gives a face
(``Detector.BLAZEFACE``, half the BlazeFace score, no landmarks) whose five points are placed for a profile
facing the side BlazeFace's nose keypoint points to (pose: that side's ``BOX_YAW``, an estimate). Both are fallbacks: ``Face.is_fallback`` is True.

Aligning (``align_turned``). The five-point similarity onto the frontal template is ill-posed for a turned
head: the eyes come closer together and the nose moves sideways, so the fit shifts the face off-centre
(half the crop background, the ear cut off) and zooms in. Here the template turns with the head: its five
points are given depths (nose tip ``NOSE_DEPTH`` in front of the eyes and mouth corners), turned by the
yaw seen in the five points (``estimate_yaw``) about a vertical axis ``YAW_AXIS_DEPTH`` behind the eyes,
and projected. The axis depth centres the ear-to-nose-tip span in the crop; the vertical scale is
untouched. Below ``YAW_RAMP[0]`` degrees the template is not turned at all (crops identical to
``align.align_face``), from ``YAW_RAMP[1]`` it turns with the full yaw, linearly in between.
"""

from __future__ import annotations

import functools
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from faceapp.core.types import Detector, Face
from faceapp.vision.align import TEMPLATE_112, align_face, template, transform_points
from faceapp.vision.geometry import box_from_points, five_points_from_landmarks

# ---------------------------------------------------------------------------------------- turned template
#: depth of the nose tip in front of the eyes and mouth corners, in 112-template pixels (MediaPipe's z of
#: 192 frontal CFP faces aligned on the template: eyes +3.6, mouth corners +3.2, nose tip -19.7)
NOSE_DEPTH = 23.3
#: depth behind the eye plane (template pixels) of the vertical axis the template turns about: puts the
#: middle of the ear-to-nose-tip span (CFP fiducials 0 and 21) at the crop centre (median -1.3 px over the
#: 1,345 well-located CFP profiles the landmarker finds; the frontal template leaves it 24 px off)
YAW_AXIS_DEPTH = 24.0
#: |yaw| (degrees) below which the template stays frontal, and from which it turns with the full yaw
YAW_RAMP = (25.0, 45.0)

_EYES_Y = float(TEMPLATE_112[:2, 1].mean())
_MOUTH_Y = float(TEMPLATE_112[3:, 1].mean())
_DROP = _MOUTH_Y - _EYES_Y                                    # eyes-to-mouth distance, 40.6 px
_NOSE_GAIN = NOSE_DEPTH / _DROP                               # nose offset across the face = this * sin(yaw)
_EYE_GAIN = float(TEMPLATE_112[1, 0] - TEMPLATE_112[0, 0]) / _DROP   # eye spread = this * cos(yaw)
_DEPTHS = np.array([0.0, 0.0, -NOSE_DEPTH, 0.0, 0.0])         # z of the five points; negative = towards the camera


def estimate_yaw(five_points: np.ndarray) -> float:
    """Head yaw in degrees seen in five points (the pipeline's sign: + = nose towards the image right).

    Both cues are measured across the eyes-to-mouth axis and divided by its length, so scale, roll and
    pitch do not matter: the nose tip's offset from the eyes' midpoint (``NOSE_DEPTH`` x sin yaw for the
    template's face) and the eye spread (its inter-ocular distance x cos yaw). 0 for degenerate points."""
    p = np.asarray(five_points, dtype=np.float64).reshape(5, 2)
    eyes, mouth = (p[0] + p[1]) / 2.0, (p[3] + p[4]) / 2.0
    down = mouth - eyes
    length = float(np.hypot(*down))
    if length < 1e-9:
        return 0.0
    down /= length
    across = np.array([down[1], -down[0]])                    # image right for an upright face
    nose = float((p[2] - eyes) @ across) / length
    spread = float((p[1] - p[0]) @ across) / length
    return math.degrees(math.atan2(nose / _NOSE_GAIN, spread / _EYE_GAIN))


def template_yaw(yaw: float) -> float:
    """The yaw the template is turned by for a face seen at ``yaw``: 0 below ``YAW_RAMP[0]``, ``yaw``
    from ``YAW_RAMP[1]``, linear (and continuous) in between."""
    low, high = YAW_RAMP
    size = abs(float(yaw))
    if size <= low:
        return 0.0
    turned = size if size >= high else (size - low) * high / (high - low)
    return math.copysign(min(turned, 90.0), yaw)


def turned_template(yaw: float, size: int = 112) -> np.ndarray:
    """The five-point template of a head turned by ``yaw`` degrees (orthographic, about a vertical axis
    through the crop centre ``YAW_AXIS_DEPTH`` behind the eyes), for a ``size`` x ``size`` crop."""
    if yaw == 0.0:
        return template(size)
    angle = math.radians(yaw)
    points = TEMPLATE_112.astype(np.float64)
    x = points[:, 0] - 56.0
    z = _DEPTHS - YAW_AXIS_DEPTH
    points[:, 0] = 56.0 + x * math.cos(angle) - z * math.sin(angle)
    return (points * (size / 112.0)).astype(np.float32)


def template_for(five_points: np.ndarray, size: int = 112) -> np.ndarray:
    """The template ``align_turned`` fits ``five_points`` to: the frontal one within 25 degrees of frontal,
    else the one turned by ``template_yaw(estimate_yaw(five_points))``."""
    return turned_template(template_yaw(estimate_yaw(five_points)), size)


def align_turned(image: np.ndarray, five_points: np.ndarray, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """``align.align_face`` onto ``template_for(five_points)``: identical crops for faces within 25 degrees of
    frontal, centred crops at the right scale for profiles."""
    return align_face(image, five_points, size, dst=template_for(five_points, size))


# ---------------------------------------------------------------------------------------- box-only faces
#: where ``align_turned`` puts the crop of a profile relative to its BlazeFace box, measured on the 439 CFP
#: profiles whose region look found landmarks within 0.15 face heights of the labels (medians; see
#: scripts/profile_accuracy.py --calibrate): crop centre offset in box widths (towards the nose) and
#: heights (down), crop side in box sides, and the yaw the box-only points are given
BOX_CENTRE_SHIFT = (0.0, -0.176)
BOX_CROP_SIDE = 1.30
BOX_YAW = 62.0
#: a box-only face counts as a profile when the yaw seen in BlazeFace's own keypoints is at least this
#: (those keypoints under-read profiles: 10th percentile 15 degrees on the same 439 CFP profiles)
BOX_PROFILE_MIN_YAW = 10.0


def box_profile_points(box: Sequence[float], facing: int, *, yaw: float = BOX_YAW) -> np.ndarray:
    """Five points (5 x 2 float32, template order) for a profile in ``box`` (x, y, w, h) whose nose points
    to the image right (``facing`` +1) or left (-1): the turned template placed where a landmarker-found
    profile's crop sits relative to its BlazeFace box, so ``align_turned`` reproduces that crop."""
    x, y, w, h = (float(v) for v in box)
    side = BOX_CROP_SIDE * max(w, h)
    cx = x + w / 2.0 + facing * BOX_CENTRE_SHIFT[0] * w
    cy = y + h / 2.0 + BOX_CENTRE_SHIFT[1] * h
    crop_points = turned_template(math.copysign(yaw, facing))
    scale = side / 112.0
    return ((crop_points - 56.0) * scale + np.array([cx, cy], dtype=np.float32)).astype(np.float32)


def facing_from_blazeface(face: Face) -> int:
    """+1 when the nose points to the image right, -1 to the left: BlazeFace's nose keypoint (the five
    points' third) relative to the box centre (right on 435 of the 439 CFP profiles above)."""
    x, _, w, _ = face.box
    return 1 if float(face.five_points[2, 0]) >= x + w / 2.0 else -1


# ---------------------------------------------------------------------------------------- mirrored meshes
def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _proto_fields(data: bytes):  # noqa: ANN202 - (field, wire type, value) triples
    """Minimal protobuf wire-format reader (enough for MediaPipe's geometry metadata)."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            n, i = _varint(data, i)
            value, i = data[i:i + n], i + n
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


#: the iris landmarks (468 right centre + 4, 473 left centre + 4) under a mirror, measured on CFP photos
_IRIS_MIRROR = {468: 473, 469: 476, 470: 475, 471: 474, 472: 477}


@functools.lru_cache(maxsize=4)
def mesh_mirror_permutation(landmarker_task: Path) -> np.ndarray:
    """478 indices: landmark i of a mirrored face is landmark ``perm[i]`` of the face itself (33 <-> 263,
    1 <-> 1, 468 <-> 473 ...), from the exactly symmetric canonical mesh inside ``face_landmarker.task``
    (GeometryPipelineMetadata.canonical_mesh, vertices x, y, z, u, v)."""
    with zipfile.ZipFile(landmarker_task) as bundle:
        metadata = bundle.read("geometry_pipeline_metadata_landmarks.binarypb")
    mesh = next(value for field, wire, value in _proto_fields(metadata) if field == 1 and wire == 2)
    values: list[float] = []
    for field, wire, value in _proto_fields(mesh):
        if field == 3:
            values.extend(np.frombuffer(value, dtype="<f4").tolist())
    vertices = np.asarray(values, dtype=np.float64).reshape(-1, 5)[:, :3]
    if len(vertices) != 468:
        raise ValueError(f"{landmarker_task}: canonical mesh has {len(vertices)} vertices, expected 468")
    mirrored = vertices * np.array([-1.0, 1.0, 1.0])
    distances = np.linalg.norm(mirrored[:, None, :] - vertices[None, :, :], axis=2)
    perm = distances.argmin(axis=1)
    if distances.min(axis=1).max() > 1e-3 or not np.array_equal(perm[perm], np.arange(468)):
        raise ValueError(f"{landmarker_task}: canonical mesh is not left-right symmetric")
    iris = np.arange(468, 478)
    for a, b in _IRIS_MIRROR.items():
        iris[a - 468], iris[b - 468] = b, a
    return np.concatenate([perm, iris])


def _swap_sides(name: str) -> str:
    if "Left" in name:
        return name.replace("Left", "Right")
    return name.replace("Right", "Left")


# ---------------------------------------------------------------------------------------- region search
@dataclass(frozen=True)
class RegionTry:
    """One look at a proposed box: a square ``scale`` times the box side, turned ``angle`` degrees
    counter-clockwise, optionally mirrored."""

    scale: float
    angle: float
    mirror: bool


#: tried in order until the landmarker finds a face; on the 549 CFP profile misses BlazeFace boxes (at
#: score 0.3, before the checks below) one look finds a face in 320, the first six in 470, all twelve in 495
REGION_TRIES = tuple(RegionTry(scale, angle, mirror) for scale in (2.6, 2.0)
                     for angle, mirror in ((0.0, False), (0.0, True), (20.0, False), (-20.0, False),
                                           (20.0, True), (-20.0, True)))
REGION_SIZE = 256                 # pixels of the square region shown to the landmarker
REGION_CONFIDENCE = 0.1           # landmarker detection/presence threshold inside a proposed region
PROPOSAL_MIN_SCORE = 0.5          # BlazeFace score a box needs to be looked at
MAX_PROPOSALS = 3                 # at most this many boxes (highest scores) per image
#: a face found in a region must be a turned head (|yaw| at least this) that is not lying on its side
#: (|roll| at most that): false finds on chests, arms and hands are mostly frontal or rolled ~80 degrees
MIN_REGION_YAW = 20.0
MAX_REGION_ROLL = 60.0
#: ... and at least this big (side of its landmarks' box over the proposal's side; true profiles: 1st
#: percentile 0.62, median 1.0): rejects an ear taken for a face inside a head's box
MIN_REGION_SIZE = 0.5
BOX_ONLY_MIN_SCORE = 0.7          # BlazeFace score a box needs to become a face without landmarks
BOX_ONLY_SCORE = 0.5              # a box-only face's score = this * the BlazeFace score


def region_matrix(box: Sequence[float], look: RegionTry, size: int = REGION_SIZE) -> np.ndarray:
    """2 x 3 affine matrix from image pixels to the ``size`` x ``size`` region of ``look`` at ``box``."""
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2.0, y + h / 2.0
    matrix = cv2.getRotationMatrix2D((cx, cy), look.angle, size / (look.scale * max(w, h)))
    matrix[:, 2] += np.array([size / 2.0 - cx, size / 2.0 - cy])
    if look.mirror:
        matrix = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([matrix, [0.0, 0.0, 1.0]])
    return matrix


def map_region_face(face: Face, matrix: np.ndarray, look: RegionTry, mirror_perm: np.ndarray | None) -> Face:
    """A landmarker face found in a region, moved back to the image: landmarks through the inverse
    matrix (z scaled alike), and for a mirrored look the mesh, pose and blendshapes swapped left/right."""
    inverse = cv2.invertAffineTransform(matrix)
    scale = 1.0 / math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    landmarks = face.landmarks.astype(np.float64).copy()
    landmarks[:, :2] = transform_points(inverse, landmarks[:, :2])
    landmarks[:, 2] *= scale
    shapes = dict(face.blendshapes)
    pose = face.pose
    if look.mirror:
        if mirror_perm is None:
            raise ValueError("a mirrored look needs the mesh's mirror permutation")
        landmarks = landmarks[mirror_perm]
        shapes = {_swap_sides(name): value for name, value in shapes.items()}
        if pose is not None:
            pose = (-pose[0], pose[1], -pose[2])
    if pose is not None:
        pose = (pose[0], pose[1], (pose[2] + look.angle + 180.0) % 360.0 - 180.0)
    landmarks = landmarks.astype(np.float32)
    return Face(box=box_from_points(landmarks), five_points=five_points_from_landmarks(landmarks), score=face.score,
                landmarks=landmarks, pose=pose, blendshapes=shapes, detector=Detector.LANDMARKER_ROI)


def _inside(point: Sequence[float], box: Sequence[float]) -> bool:
    x, y, w, h = box
    return x <= point[0] <= x + w and y <= point[1] <= y + h


class ProfileSearch:
    """BlazeFace proposals -> landmarker on regions around them -> faces in image pixels (see module doc).

    ``landmarker`` and ``blazeface`` are IMAGE-mode back ends (``detectors.LandmarkerBackend`` with
    ``num_faces=1, min_confidence=REGION_CONFIDENCE`` and ``detectors.BlazeFaceBackend``);
    ``mirror_perm`` the mesh's mirror permutation (None: mirrored looks are skipped).
    """

    def __init__(self, landmarker, blazeface, mirror_perm: np.ndarray | None, *,  # noqa: ANN001 - back ends
                 tries: Sequence[RegionTry] = REGION_TRIES, min_score: float = PROPOSAL_MIN_SCORE,
                 max_proposals: int = MAX_PROPOSALS, box_only: bool = True) -> None:
        self.landmarker = landmarker
        self.blazeface = blazeface
        self.mirror_perm = mirror_perm
        self.tries = tuple(t for t in tries if mirror_perm is not None or not t.mirror)
        self.min_score = float(min_score)
        self.max_proposals = int(max_proposals)
        self.box_only = bool(box_only)

    def proposals(self, rgb: np.ndarray) -> list[Face]:
        """BlazeFace boxes scoring at least ``min_score``, best first, at most ``max_proposals``."""
        boxes = [f for f in self.blazeface.detect(rgb, 0)
                 if f.score >= self.min_score and f.box[2] > 4 and f.box[3] > 4]
        return sorted(boxes, key=lambda f: f.score, reverse=True)[:self.max_proposals]

    def look(self, rgb: np.ndarray, proposal: Face) -> Face | None:
        """The landmarker's face in the first region look that finds a plausible one: centred in the
        proposal's box, a turned head (``MIN_REGION_YAW``), not lying on its side (``MAX_REGION_ROLL``),
        not much smaller than the box (``MIN_REGION_SIZE``)."""
        side = max(proposal.box[2], proposal.box[3])
        for look in self.tries:
            matrix = region_matrix(proposal.box, look)
            region = cv2.warpAffine(rgb, matrix, (REGION_SIZE, REGION_SIZE), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
            for found in self.landmarker.detect(region, 0):
                face = map_region_face(found, matrix, look, self.mirror_perm)
                if face.pose is None or not _inside(face.center, proposal.box):
                    continue
                if math.sqrt(face.area) < MIN_REGION_SIZE * side:
                    continue
                if abs(face.pose[0]) >= MIN_REGION_YAW and abs(face.pose[2]) <= MAX_REGION_ROLL:
                    face.score = proposal.score
                    return face
        return None

    def box_face(self, proposal: Face) -> Face:
        """A face from the box alone: profile points when BlazeFace's keypoints show a turned head
        (``BOX_PROFILE_MIN_YAW``), else BlazeFace's own five points; low score, no landmarks. A profile
        gets the estimated pose (+-``BOX_YAW``, 0, 0), so pose limits (the enrolment gate) still apply."""
        points, pose = proposal.five_points, None
        if abs(estimate_yaw(points)) >= BOX_PROFILE_MIN_YAW:
            facing = facing_from_blazeface(proposal)
            points, pose = box_profile_points(proposal.box, facing), (facing * BOX_YAW, 0.0, 0.0)
        return Face(box=proposal.box, five_points=points.astype(np.float32), score=BOX_ONLY_SCORE * proposal.score,
                    pose=pose, detector=Detector.BLAZEFACE)

    def search(self, rgb: np.ndarray) -> list[Face]:
        """Every face found around BlazeFace's boxes in the RGB image (landmarks where possible)."""
        faces = []
        for proposal in self.proposals(rgb):
            face = self.look(rgb, proposal)
            if face is None and self.box_only and proposal.score >= BOX_ONLY_MIN_SCORE:
                face = self.box_face(proposal)
            if face is not None:
                faces.append(face)
        return faces

    def close(self) -> None:
        """Release both MediaPipe tasks."""
        self.landmarker.close()
        self.blazeface.close()
