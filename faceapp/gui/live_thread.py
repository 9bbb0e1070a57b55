"""The live loop on its own QThread, handing the GUI only the newest result ("latest frame wins").

The thread opens the source (a camera can take a second, or fail), runs ``services.live.LiveRunner``
(which already drops frames between capture and processing) and converts each frame to a QImage already
scaled to the view (``display_size``, set by the GUI) in the format the screen paints directly, so the GUI
thread's paint is a pixel copy: no scaling, no colour conversion. It
signals ``result_ready`` only when the GUI has taken the previous result, so results never queue up in
the event loop either: when drawing is behind, the GUI simply gets the newest one next time.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QImage

from faceapp.core.errors import CameraError, FaceAppError
from faceapp.core.progress import CancelToken
from faceapp.gui.widgets.video_view import display_frame
from faceapp.services.live import LivePipeline, LiveResult, LiveRunner, is_still_source

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    """One result for the GUI, with its frame already converted and the time it became ready."""

    result: LiveResult
    image: QImage                   # the frame scaled to the view's size when it was converted
    ready_at: float

    @property
    def frame_size(self) -> tuple[int, int]:
        """The native frame's (w, h): the overlays' pixels."""
        h, w = self.result.frame.image.shape[:2]
        return w, h


class LiveThread(QThread):
    """Runs one source through a ``LivePipeline`` until it ends, fails or ``stop()`` is called.

    Signals (delivered on the GUI thread): ``opened(str)`` source description, ``result_ready()`` a
    new result can be taken with ``take()``, ``failed(object)`` the error that ended the run (e.g.
    CameraError), ``ended(str)`` why it stopped normally ("end of video", "stopped").
    """

    opened = Signal(str)
    result_ready = Signal()
    failed = Signal(object)
    ended = Signal(str)

    def __init__(self, open_source: Callable[[], Any], live_factory: Callable[[], LivePipeline], *,
                 still_interval_s: float = 1.5, parent: Any = None) -> None:
        super().__init__(parent)
        self._open_source = open_source
        self._live_factory = live_factory
        self.still_interval_s = still_interval_s
        self.cancel = CancelToken()
        self._lock = threading.Lock()
        self._latest: Delivery | None = None
        self._waiting_for_gui = False
        self.delivered = 0       # results handed to the GUI
        self.skipped = 0         # results replaced before the GUI took them
        self.runner: LiveRunner | None = None
        self.display_size: tuple[int, int] | None = None    # (w, h) of the view; None: native size

    def stop(self) -> None:
        """Ask the loop to end (returns at once; ``wait()`` joins)."""
        self.cancel.cancel()

    def take(self) -> Delivery | None:
        """The newest result (GUI thread); None when there is nothing new."""
        with self._lock:
            delivery, self._latest = self._latest, None
            self._waiting_for_gui = False
            return delivery

    def _offer(self, delivery: Delivery) -> None:
        with self._lock:
            if self._latest is not None:
                self.skipped += 1
            self._latest = delivery
            notify = not self._waiting_for_gui
            self._waiting_for_gui = True
        if notify:
            self.result_ready.emit()

    def run(self) -> None:  # noqa: D401 - QThread API
        try:
            source = self._open_source()
        except Exception as error:  # noqa: BLE001 - shown to the operator
            self.failed.emit(error)
            return
        try:
            live = self._live_factory()
            self.opened.emit(str(getattr(source, "description", source)))
            stills = is_still_source(source)
            with LiveRunner(source, live) as runner:
                self.runner = runner
                for result in runner.results(self.cancel):
                    image = display_frame(result.frame.image, self.display_size)
                    self._offer(Delivery(result, image, time.perf_counter()))
                    self.delivered += 1
                    if stills and self.still_interval_s > 0:
                        self._sleep(self.still_interval_s)
            self.ended.emit("stopped" if self.cancel.cancelled else "end of the source")
        except FaceAppError as error:
            self.failed.emit(error)
        except Exception as error:  # noqa: BLE001 - a bug or driver failure must not kill the app
            log.exception("live loop failed")
            self.failed.emit(CameraError(f"the live view stopped: {type(error).__name__}: {error}"))

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.cancel.cancelled and time.monotonic() < end:
            time.sleep(0.02)
