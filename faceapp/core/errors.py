"""Errors the user can cause or meet, each with a distinct CLI exit code.

Every message names the file, field or setting that is wrong and says what to do. The CLI maps
``FaceAppError.exit_code`` to the process exit status; the GUI shows ``str(error)`` in a dialog.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the ``faceapp`` command (documented in ``faceapp --help``)."""

    OK = 0
    UNEXPECTED = 1          # a bug: please report it
    USAGE = 2               # bad command line (argparse)
    INPUT_FILE = 3          # missing, unreadable, corrupt or unsupported input file
    NO_FACE = 4             # no face found where one was required
    MODEL_ASSET = 5         # MediaPipe or embedding model file missing, corrupt or wrong
    DATABASE = 6            # database locked, read-only, newer schema, unreachable
    NOT_FOUND = 7           # identity / template / model name not found
    INCOMPATIBLE = 8        # embedding dimension or model mismatch, wrong checkpoint architecture
    DATASET = 9             # dataset folder or pairs protocol unusable
    CAMERA = 10             # camera absent, unplugged or stream ended unexpectedly
    CANCELLED = 11          # the user cancelled a long job
    NO_MATCH = 12           # verify answered NO MATCH / identify answered unknown (only with --strict)
    SEVERAL_FACES = 13      # several faces where exactly one was required (enrolment)
    QUALITY = 14            # every image was rejected by the quality gate
    GALLERY_KEY = 15        # gallery key missing, wrong, refused by the keyring, or rotated away
    TAMPERED = 16           # an encrypted crop/template failed authentication (changed or moved)
    ATTACK_SUSPECTED = 17   # liveness: a presentation attack is suspected (passive score low, challenge failed)
    LIVENESS_NOT_CHECKED = 18  # liveness could not be judged (video too short or too dark, no usable frames)


class FaceAppError(Exception):
    """Base class of the errors a user can act on; ``exit_code`` selects the CLI exit status."""

    exit_code: ExitCode = ExitCode.UNEXPECTED

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class InputFileError(FaceAppError):
    """An input file is missing, unreadable, truncated or not an image/video."""

    exit_code = ExitCode.INPUT_FILE


class NoFaceError(FaceAppError):
    """No face was found in an image where one was needed."""

    exit_code = ExitCode.NO_FACE


class SeveralFacesError(FaceAppError):
    """Several faces were found where exactly one is required (e.g. enrolment)."""

    exit_code = ExitCode.SEVERAL_FACES


class ModelAssetError(FaceAppError):
    """A model file (MediaPipe asset or embedding network) is missing, corrupt or of the wrong kind."""

    exit_code = ExitCode.MODEL_ASSET


class DatabaseError(FaceAppError):
    """The identity store cannot be used: locked, read-only, newer schema, unreachable."""

    exit_code = ExitCode.DATABASE


class NotFoundError(FaceAppError):
    """A named identity, template or model does not exist."""

    exit_code = ExitCode.NOT_FOUND


class IncompatibleError(FaceAppError):
    """Two things that must match do not (embedding sizes, model ids, checkpoint architectures)."""

    exit_code = ExitCode.INCOMPATIBLE


class DatasetError(FaceAppError):
    """A training dataset or an evaluation protocol cannot be used as given."""

    exit_code = ExitCode.DATASET


class CameraError(FaceAppError):
    """A camera cannot be opened, or stopped delivering frames."""

    exit_code = ExitCode.CAMERA


class CancelledError(FaceAppError):
    """A long job was cancelled by the user."""

    exit_code = ExitCode.CANCELLED


class QualityError(FaceAppError):
    """Every image offered was rejected by the quality gate."""

    exit_code = ExitCode.QUALITY


class GalleryKeyError(FaceAppError):
    """The key that opens an encrypted gallery (or an encrypted export) is missing, wrong, refused by the OS
    keyring, or was rotated away. The gallery is never read or written in clear instead."""

    exit_code = ExitCode.GALLERY_KEY


class TamperedDataError(FaceAppError):
    """An encrypted crop or template failed its authentication tag: the bytes were changed, or moved to
    another row or gallery."""

    exit_code = ExitCode.TAMPERED
