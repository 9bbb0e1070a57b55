"""Face-finding back ends behind ``FacePipeline``: MediaPipe FaceLandmarker, and two visible fallbacks.

Each back end takes an RGB uint8 image and returns ``Face`` records in that image's pixel coordinates
(the pipeline maps them back when it downscaled the frame). ``Face.detector`` names the back end.

* ``LandmarkerBackend``: 478 landmarks, five points from the mesh, pose from the transformation matrix,
  52 blendshapes. IMAGE mode for stills, VIDEO mode (tracking, strictly increasing integer timestamps)
  for streams. The landmarker gives no per-face confidence, so ``score`` is 1.0.
* ``BlazeFaceBackend``: MediaPipe FaceDetector short range; 6 keypoints (eyes, nose tip, mouth centre,
  ear tragions). The mouth corners are estimated from the mouth centre and the eye vector with constants
  measured against the landmarker on 383 CelebA photos: corners = mouth +- 0.42 * eye_vector, moved up
  by 0.10 * interocular.
* ``HaarBackend``: OpenCV's bundled frontal-face Haar cascade; the five points are placed in the box at
  the mean relative positions measured against the landmarker on 339 CelebA photos (errors of about 5%
  of the box side for the eyes, 7% for the nose and mouth).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from faceapp.core.errors import ModelAssetError
from faceapp.core.types import Detector, Face
from faceapp.vision.geometry import box_from_points, five_points_from_landmarks, pose_from_matrix

log = logging.getLogger(__name__)

#: five points relative to a Haar box (x, y in box widths/heights), symmetrised from measurements.
HAAR_RELATIVE_POINTS = np.array(
    [[0.3265, 0.396], [0.6735, 0.396], [0.5, 0.634], [0.341, 0.766], [0.659, 0.766]], dtype=np.float32
)
BLAZE_MOUTH_HALF_WIDTH = 0.42     # mouth corners = mouth centre +- this * eye vector
BLAZE_MOUTH_RAISE = 0.10          # corners sit this * interocular above BlazeFace's mouth keypoint


_STDERR_LOCK = threading.Lock()


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while MediaPipe's C++ code starts up.

    MediaPipe (absl/glog/TFLite) prints warnings and info lines on stderr when a task is created and on
    its first inference, ignoring GLOG_minloglevel; users of the CLI should not see them. Skipped when
    debug logging is on (``faceapp -v``) or FACEAPP_NATIVE_LOGS=1.
    """
    if os.environ.get("FACEAPP_NATIVE_LOGS") == "1" or logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    with _STDERR_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
        except OSError:
            yield
            return
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


def _mp_image(rgb: np.ndarray):  # noqa: ANN202 - mediapipe type
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))


def _running_mode(mode: str):  # noqa: ANN202
    from mediapipe.tasks.python import vision

    return vision.RunningMode.VIDEO if mode == "video" else vision.RunningMode.IMAGE


def _run(backend: "LandmarkerBackend | BlazeFaceBackend", rgb: np.ndarray, timestamp_ms: int):  # noqa: ANN202
    """Run a MediaPipe task on one RGB image (the first run with native stderr silenced)."""
    image = _mp_image(rgb)
    task = backend._task  # noqa: SLF001 - module-private helper

    def call():  # noqa: ANN202
        return task.detect_for_video(image, timestamp_ms) if backend.mode == "video" else task.detect(image)

    if backend._warm:  # noqa: SLF001
        return call()
    with quiet_native_stderr():
        result = call()
    backend._warm = True  # noqa: SLF001
    return result


def _load_error(path: Path, error: Exception) -> ModelAssetError:
    return ModelAssetError(f"{path}: MediaPipe cannot load this model file ({error}); replace the file "
                           f"(see `faceapp assets`)", path=str(path))


class LandmarkerBackend:
    """MediaPipe FaceLandmarker in IMAGE or VIDEO mode."""

    detector = Detector.LANDMARKER

    def __init__(self, model_path: Path, mode: str = "image", *, num_faces: int = 4,
                 min_confidence: float = 0.3) -> None:
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        self.mode = mode
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)),
            running_mode=_running_mode(mode),
            num_faces=num_faces,
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
            min_tracking_confidence=0.5,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        try:
            with quiet_native_stderr():
                self._task = vision.FaceLandmarker.create_from_options(options)
        except (RuntimeError, ValueError, OSError) as error:
            raise _load_error(model_path, error) from error
        self._warm = False

    def detect(self, rgb: np.ndarray, timestamp_ms: int) -> list[Face]:
        result = _run(self, rgb, timestamp_ms)
        h, w = rgb.shape[:2]
        faces = []
        for i, points in enumerate(result.face_landmarks):
            lms = np.array([(p.x * w, p.y * h, p.z * w) for p in points], dtype=np.float32)
            pose = None
            if result.facial_transformation_matrixes and i < len(result.facial_transformation_matrixes):
                pose = pose_from_matrix(np.asarray(result.facial_transformation_matrixes[i]))
            shapes: dict[str, float] = {}
            if result.face_blendshapes and i < len(result.face_blendshapes):
                shapes = {c.category_name: float(c.score) for c in result.face_blendshapes[i] if c.category_name}
            faces.append(Face(box=box_from_points(lms), five_points=five_points_from_landmarks(lms), score=1.0,
                              landmarks=lms, pose=pose, blendshapes=shapes, detector=Detector.LANDMARKER))
        return faces

    def close(self) -> None:
        with quiet_native_stderr():
            self._task.close()


class BlazeFaceBackend:
    """MediaPipe FaceDetector (BlazeFace short range) keypoints -> five points (fallback)."""

    detector = Detector.BLAZEFACE

    def __init__(self, model_path: Path, mode: str = "image", *, min_confidence: float = 0.5) -> None:
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        self.mode = mode
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)),
            running_mode=_running_mode(mode),
            min_detection_confidence=min_confidence,
        )
        try:
            with quiet_native_stderr():
                self._task = vision.FaceDetector.create_from_options(options)
        except (RuntimeError, ValueError, OSError) as error:
            raise _load_error(model_path, error) from error
        self._warm = False

    @staticmethod
    def five_points(keypoints: np.ndarray) -> np.ndarray:
        """Five points from BlazeFace's (right eye, left eye, nose, mouth, ...) keypoints in pixels."""
        eye_a, eye_b, nose, mouth = (np.asarray(k, dtype=np.float32) for k in keypoints[:4])
        vec = eye_b - eye_a
        iod = float(np.linalg.norm(vec)) or 1.0
        down = np.array([-vec[1], vec[0]], dtype=np.float32) / iod
        centre = mouth - BLAZE_MOUTH_RAISE * iod * down
        half = BLAZE_MOUTH_HALF_WIDTH * vec
        return np.stack([eye_a, eye_b, nose, centre - half, centre + half]).astype(np.float32)

    def detect(self, rgb: np.ndarray, timestamp_ms: int) -> list[Face]:
        result = _run(self, rgb, timestamp_ms)
        h, w = rgb.shape[:2]
        faces = []
        for det in result.detections:
            if len(det.keypoints) < 4:
                continue
            kps = np.array([(k.x * w, k.y * h) for k in det.keypoints], dtype=np.float32)
            bb = det.bounding_box
            score = float(det.categories[0].score) if det.categories else 1.0
            faces.append(Face(box=(float(bb.origin_x), float(bb.origin_y), float(bb.width), float(bb.height)),
                              five_points=self.five_points(kps), score=score, detector=Detector.BLAZEFACE))
        return faces

    def close(self) -> None:
        with quiet_native_stderr():
            self._task.close()


class HaarBackend:
    """OpenCV frontal-face Haar cascade with five points estimated from the box (last-resort fallback)."""

    detector = Detector.HAAR
    mode = "image"

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml") -> None:
        data = getattr(cv2, "data", None)
        folder = getattr(data, "haarcascades", None) if data is not None else None
        if not folder:
            raise ModelAssetError("OpenCV's bundled Haar cascades (cv2.data.haarcascades) are missing in this "
                                  "OpenCV build; install the MediaPipe models instead")
        path = Path(folder) / cascade
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ModelAssetError(f"{path}: OpenCV cannot load this Haar cascade", path=str(path))

    def detect(self, rgb: np.ndarray, timestamp_ms: int) -> list[Face]:
        grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        side = min(grey.shape[:2])
        min_side = max(24, side // 12)
        rects, _, weights = self._cascade.detectMultiScale3(grey, scaleFactor=1.1, minNeighbors=5,
                                                            minSize=(min_side, min_side), outputRejectLevels=True)
        faces = []
        for (x, y, w, h), weight in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            pts = HAAR_RELATIVE_POINTS * np.array([w, h], dtype=np.float32) + np.array([x, y], dtype=np.float32)
            score = float(1.0 / (1.0 + np.exp(-float(weight))))
            faces.append(Face(box=(float(x), float(y), float(w), float(h)), five_points=pts.astype(np.float32),
                              score=score, detector=Detector.HAAR))
        return faces

    def close(self) -> None:
        """Nothing to release."""
