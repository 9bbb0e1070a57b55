"""User-facing sentences for failures (shared by the Workstation's tolerant load, the page models and the GUI).

Every failure the user can cause or meet (no camera, corrupt file, no face, locked database, missing
model) arrives as an exception; ``describe_error`` turns it into a title and a plain sentence. Bugs
(exceptions that are not ``FaceAppError`` or OS errors) say so.
"""

from __future__ import annotations

from faceapp.core import errors as E

_TITLES: list[tuple[type[BaseException], str]] = [
    (E.InputFileError, "Cannot read the file"),
    (E.NoFaceError, "No face found"),
    (E.SeveralFacesError, "Several faces found"),
    (E.ModelAssetError, "Model missing or unusable"),
    (E.DatabaseError, "Database problem"),
    (E.NotFoundError, "Not found"),
    (E.IncompatibleError, "Incompatible model or data"),
    (E.DatasetError, "Dataset problem"),
    (E.CameraError, "Camera problem"),
    (E.CancelledError, "Cancelled"),
    (E.QualityError, "Image quality too low"),
    (E.GalleryKeyError, "Gallery key missing or wrong"),
    (E.TamperedDataError, "Gallery data failed its integrity check"),
    (E.FaceAppError, "Problem"),
    (FileNotFoundError, "File not found"),
    (PermissionError, "Permission denied"),
    (OSError, "File or device error"),
    (MemoryError, "Out of memory"),
]


def describe_error(error: BaseException, context: str = "") -> tuple[str, str]:
    """(title, message) for an error; ``context`` says what was being done ("Saving the identity")."""
    title = "Unexpected error"
    for kind, text in _TITLES:
        if isinstance(error, kind):
            title = text
            break
    message = str(error).strip() or type(error).__name__
    if title == "Unexpected error":
        message = f"{type(error).__name__}: {message}. This is a bug in FaceApp; the app keeps working."
    if context:
        message = f"{context}: {message}"
    return title, message


def is_user_error(error: BaseException) -> bool:
    """True for failures the user can act on (FaceAppError, OS errors), False for bugs."""
    return isinstance(error, (E.FaceAppError, OSError, MemoryError))
