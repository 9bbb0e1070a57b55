"""The application layer: a Qt-free ``Workstation`` session and one plain-Python model per page.

Between the services and the interfaces (``faceapp.gui``, ``faceapp.cli``, ``faceapp.bench``): the
interfaces build a ``Workstation`` with ``open_workstation(WorkstationOptions(...))`` and bind to page
models (``LiveModel``, ``IdentitiesModel``) that hold a page's state and use cases and announce changes
through plain ``Event`` lists. Nothing here imports Qt (see tests/test_architecture.py).
"""

from faceapp.app.events import Event
from faceapp.app.workstation import Workstation, WorkstationOptions, open_workstation
from faceapp.storage.records import NewIdentity        # the record interfaces hand to enrolment

__all__ = ["Event", "NewIdentity", "Workstation", "WorkstationOptions", "open_workstation"]
