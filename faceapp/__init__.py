"""FaceApp: a desktop face-verification workstation.

The package is layered (see README, "Architecture"): ``faceapp.core`` at the bottom, then ``faceapp.nn``,
the domain packages (capture, vision, embedding, matching, storage, evaluation, training), the services,
and the interfaces (``faceapp.cli``, ``faceapp.gui``). Only ``faceapp.gui`` imports Qt.
"""

__version__ = "0.1.0"
