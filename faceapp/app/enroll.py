"""The Enroll wizard's model: who is enrolled (a new person with consent, or more images of an existing
identity), the accepted faces (camera frames through the quality gate and ``PoseCollector``, or image
files, each checked with its reasons), the review plan (embeddings and the duplicate check of
``EnrollmentService.prepare``) and the save in one transaction. Qt-free.

The Qt view (``faceapp.gui.pages.enroll.EnrollPage``) owns the wizard's widgets, its steps and the camera
thread, and forwards what happens to this model. Slow work goes through the ``run`` callable the owner
passes in (``AppContext.run``: a worker, progress and results on the GUI thread; ``run_now`` in tests).

Events (``faceapp.app.events.Event``):
- ``ready_changed(ready)``: enrolment is (not) possible (database, model and gallery loaded);
- ``sample_added(aligned, label)``, ``samples_removed(rows)``, ``samples_cleared()``: the accepted faces;
- ``rejected_added(source, reasons)``: an image file was refused;
- ``counts_changed()``: ``count_text()`` / ``can_prepare`` changed;
- ``hint_changed(text, role)``: the capture hint ("move closer"...) and its role (verdict-match...);
- ``busy_changed(busy, text, total)``, ``progress(event)``: long work started / advanced / ended;
- ``plan_ready(plan)``: the review step's plan; ``saved(result)``: the enrolment was written;
- ``message(level, text)``; ``error(exception, context)``: a user error to report;
- ``gallery_changed()``: identities or templates changed (other pages must refresh);
- ``liveness_changed(text, passed)``: the challenge's prompt or outcome when a passed challenge is required.

``set_require_challenge(True)``: the camera also runs the active liveness challenge (blink, smile, a head
turn, random order, time limit; ``faceapp.services.live_liveness`` on the camera thread, each outcome
audited as "enroll-liveness") and ``save`` refuses until the person in front of the camera passed it in this
capture (image files alone cannot pass it).
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from faceapp.app.events import Event, run_now
from faceapp.app.identities import Runner
from faceapp.core.errors import FaceAppError, InputFileError
from faceapp.core.progress import CancelToken
from faceapp.core.types import AlignedFace
from faceapp.services.enroll_capture import PoseCollector
from faceapp.services.live import LivePipeline, LiveResult, LiveSettings
from faceapp.services.live_liveness import LiveLiveness
from faceapp.storage.records import NewIdentity

UNAVAILABLE = "Enrolment is not available: the database or the model did not load."
CHALLENGE_NEEDED = ("A passed liveness challenge is required before saving: start the camera and follow the "
                    "prompts (blink, smile, turn the head).")


def assess_files(service: Any, lock: threading.Lock, paths: Sequence[str], stop: CancelToken | None = None) -> Any:
    """Check image files for enrolment (worker): yields Progress, returns [(path, SampleCheck)]. ``stop``
    (the model's token, not the runner's ``cancel``, which would discard the result) ends the check before
    the next file and returns the files checked so far: nothing checked is lost."""
    from faceapp.core.progress import Progress

    checks = []
    for number, path in enumerate(paths, 1):
        if stop is not None and stop.cancelled:
            break
        with lock:
            check = service.assess_input(path, number)
        checks.append((path, check))
        yield Progress("check", number, len(paths), message=Path(path).name)
    return checks


def clean_name(text: str) -> str:
    return " ".join(text.split())


class EnrollModel:
    """State and use cases of the Enroll wizard (see the module docstring)."""

    def __init__(self, session: Any, run: Runner = run_now) -> None:
        self.session = session              # .store / .embedder / .gallery / .loading / create_pipeline
        self.run = run
        self.service: Any = None            # EnrollmentService of the loaded store and model
        self._service_lock = threading.Lock()
        self._pipeline_lock = getattr(session, "pipeline_lock", None) or threading.Lock()
        self._video_pipeline: Any = None
        self.collector = PoseCollector()
        self.samples: list[AlignedFace] = []          # accepted faces, in order
        self.rejected: list[tuple[str, str]] = []      # (source, reasons) of refused files
        self.plan: Any = None
        self.allow_different = False      # enrol photos that do not agree with each other (the operator's call)
        self.last_result: Any = None                   # EnrollmentResult after saving
        self.target_identity: int | None = None        # adding to an existing identity
        self.target_name = ""
        self.busy = False
        self._check_cancel: CancelToken | None = None   # set while image files are checked
        self._check_total = 0
        self.hint = "Start the camera"
        self.hint_history: deque[str] = deque(maxlen=100)   # hints shown, newest last
        self.require_challenge = False                 # save only after a passed liveness challenge
        self.challenge_passed = False                  # in this capture (reset with the samples)
        self.liveness: LiveLiveness | None = None      # the camera loop's challenge (built with the loop)
        for name in ("ready_changed", "sample_added", "samples_removed", "samples_cleared", "rejected_added",
                     "counts_changed", "hint_changed", "busy_changed", "progress", "plan_ready", "saved", "message",
                     "error", "gallery_changed", "liveness_changed"):
            setattr(self, name, Event(name))

    # -- services ---------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.service is not None

    def services_changed(self) -> None:
        """The store / model were (re)loaded: a new EnrollmentService (the old one is closed on a worker)."""
        old = self.service
        self.service = None
        if old is not None:
            self.run(old.close, context="Closing the enrolment pipeline")
        session = self.session
        if session.store is not None and session.embedder is not None and session.gallery is not None:
            from faceapp.services.enrollment import EnrollmentService

            self.service = EnrollmentService(session.store, session.embedder, gallery=session.gallery,
                                             pipeline=None, operator=session.gallery.operator)
        self.ready_changed.emit(self.ready)
        self.counts_changed.emit()

    def availability_text(self) -> str | None:
        """What step 1 says about the services: a problem, "" (ready), or None (still loading: say nothing)."""
        if self.ready:
            return ""
        return None if getattr(self.session, "loading", False) else (
            "Enrolment needs the database and the embedding model; see the messages above.")

    # -- the person -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Start over for a new person (forgets everything not saved)."""
        self.target_identity, self.target_name = None, ""
        self.clear_samples()
        self.plan = None

    def start_for_existing(self, identity_id: int, name: str) -> None:
        """Add images to an existing identity (from the Identities page)."""
        self.reset()
        self.target_identity, self.target_name = int(identity_id), name

    def person_problem(self, name: str, consent: bool) -> str | None:
        """Why step 1 cannot go on (None when it can): a new person needs a name and their consent."""
        if self.target_identity is not None:
            return None
        if not clean_name(name):
            return "Enter the person's name."
        if not consent:
            return "Enrolment needs the person's consent: tick the box once they agreed."
        return None

    def identity(self, name: str, external_id: str = "", notes: str = "", consent: bool = False) -> Any:
        """The existing identity's id, or the NewIdentity described in step 1 (consent dated now)."""
        if self.target_identity is not None:
            return self.target_identity
        return NewIdentity(name=clean_name(name), external_id=external_id.strip() or None,
                           notes=notes.strip() or None, consent_at=datetime.now(timezone.utc) if consent else None)

    # -- accepted faces ---------------------------------------------------------------------------
    def clear_samples(self) -> None:
        self.samples.clear()
        self.rejected.clear()
        self.collector.reset()
        self.challenge_passed = False
        self.samples_cleared.emit()
        self.counts_changed.emit()

    def _add_sample(self, aligned: AlignedFace, label: str) -> None:
        self.samples.append(aligned)
        self.sample_added.emit(aligned, label)
        self.counts_changed.emit()

    def remove_samples(self, rows: Sequence[int]) -> None:
        """Remove accepted faces by position (and from the pose collector's kept faces)."""
        rows = sorted(set(rows), reverse=True)
        for row in rows:
            aligned = self.samples.pop(row)
            for index, kept in enumerate(self.collector.kept):
                if kept is aligned:
                    self.collector.remove(index)
                    break
        self.samples_removed.emit(rows)
        self.counts_changed.emit()

    def count_text(self) -> str:
        n, target = len(self.samples), self.collector.target
        return f"Accepted faces: {n}" + (f" (aim for {target})" if n < target else "")

    @property
    def can_prepare(self) -> bool:
        return bool(self.samples) and self.ready

    # -- image files ------------------------------------------------------------------------------
    def add_files(self, paths: Sequence[str | Path]) -> bool:
        """Check image files (a folder adds its images); False when nothing could be started."""
        if self.service is None:
            self.message.emit("warning", UNAVAILABLE)
            return False
        from faceapp.capture.images import list_images

        try:
            files = [str(p) for p in list_images([Path(p) for p in paths])]
        except FaceAppError as error:
            self.error.emit(error, "Adding images")
            return False
        if not files:
            self.error.emit(InputFileError("no image files among: " + ", ".join(Path(p).name for p in paths[:3])),
                            "Adding images")
            return False
        self._check_cancel = CancelToken()
        self._check_total = len(files)
        self._set_busy(True, f"Checking {len(files)} image(s)...", len(files))
        self.run(assess_files, self.service, self._service_lock, files, stop=self._check_cancel,
                 on_result=self._files_checked, on_progress=self.progress.emit, on_finished=self._check_done,
                 context="Checking images")
        return True

    @property
    def checking(self) -> bool:
        """Image files are being checked (``cancel_check`` stops it)."""
        return self._check_cancel is not None

    def cancel_check(self) -> None:
        """Stop checking image files after the current one; the faces checked so far stay."""
        if self._check_cancel is not None:
            self._check_cancel.cancel()

    def _check_done(self) -> None:
        self._check_cancel = None
        self._work_done()

    def _files_checked(self, checks: list) -> None:
        if len(checks) < self._check_total:
            self.message.emit("info", f"Checking stopped: {len(checks)} of {self._check_total} image(s) checked; "
                                      "the faces accepted so far are kept.")
        for path, check in checks:
            if check.accepted and check.aligned is not None:
                check.aligned.source = str(path)
                self._add_sample(check.aligned, Path(path).name)
            else:
                reasons = "; ".join(check.reasons) or "refused"
                self.rejected.append((str(path), reasons))
                self.rejected_added.emit(str(path), reasons)
        refused = sum(1 for _, c in checks if not c.accepted)
        if refused:
            self.message.emit("warning", f"{refused} of {len(checks)} image(s) refused; the reasons are listed on "
                                         "the Image files tab.")

    # -- camera -----------------------------------------------------------------------------------
    def make_live(self) -> LivePipeline:
        """The camera's LivePipeline: detection and the quality gate only (call on the camera thread)."""
        with self._pipeline_lock:
            if self._video_pipeline is None:
                self._video_pipeline = self.session.create_pipeline("video")
        settings = LiveSettings(mode="detect", quality_gate=self.service.gate if self.service else None,
                                liveness_mode="challenge" if self.require_challenge else "off")
        gallery = self.session.gallery
        self.liveness = LiveLiveness(settings, store=self.session.store, operator=getattr(gallery, "operator", None),
                                     operation="enroll-liveness")
        return LivePipeline(self._video_pipeline, settings=settings, liveness=self.liveness)

    # -- liveness ---------------------------------------------------------------------------------
    def set_require_challenge(self, required: bool) -> None:
        """Require a passed liveness challenge before saving (applies to the next camera start)."""
        self.require_challenge = bool(required)
        if self.liveness is not None:
            self.liveness.settings.liveness_mode = "challenge" if self.require_challenge else "off"
        self.liveness_changed.emit(CHALLENGE_NEEDED if required and not self.challenge_passed else "",
                                   self.challenge_passed)

    def _follow_challenge(self, result: LiveResult) -> None:
        """A camera frame's challenge state: passed once is passed for this capture."""
        decision = result.faces[0].liveness if result.faces else None
        if decision is not None and decision.is_live and not self.challenge_passed:
            self.challenge_passed = True
            self.message.emit("info", "Liveness challenge passed.")
        text = "Liveness challenge passed" if self.challenge_passed else (result.liveness_prompt or "")
        self.liveness_changed.emit(text, self.challenge_passed)

    def offer(self, result: LiveResult) -> None:
        """A camera frame: the pose collector keeps it or says why not (the hint)."""
        if self.require_challenge:
            self._follow_challenge(result)
        offer = self.collector.offer(result.faces, result.frame.timestamp_ms)
        if offer.kept:
            aligned = self.collector.kept[-1]
            aligned.source = f"{result.frame.source}#{result.frame.index}"
            self._add_sample(aligned, f"frame {result.frame.index}")
        if self.collector.done:
            self.set_hint("Done: enough good faces. Review them or keep adding.", "verdict-match")
        elif offer.reasons:
            self.set_hint(offer.message.capitalize(), "verdict-nomatch")
        else:
            self.set_hint(offer.message.capitalize(), "verdict-match" if offer.kept else "verdict-idle")

    def set_hint(self, text: str, role: str) -> None:
        if text != self.hint:
            self.hint_history.append(text)
        self.hint = text
        self.hint_changed.emit(text, role)

    def camera_failed(self) -> None:
        self.set_hint("Camera problem: see the message above", "verdict-nomatch")

    def camera_ended(self, reason: str) -> None:
        if reason != "stopped":
            self.set_hint(f"The source ended ({len(self.samples)} face(s) kept)", "verdict-idle")

    # -- prepare and save -------------------------------------------------------------------------
    def prepare(self, identity: Any) -> None:
        """Embed the accepted faces and check for duplicates, then ``plan_ready``."""
        if self.busy or self.service is None:
            return
        if not self.samples:
            self.message.emit("warning", "No accepted face yet: capture from the camera or add image files.")
            return
        self.service.allow_mixed = self.allow_different
        self._set_busy(True, "Embedding and checking for duplicates...", len(self.samples))
        self.run(self._prepare_job, identity, list(self.samples), on_result=self._prepared,
                 on_progress=self.progress.emit, on_finished=self._work_done, context="Preparing the enrolment")

    def _prepare_job(self, identity: Any, samples: list, cancel: Any = None) -> Any:
        with self._service_lock:
            plan = yield from self.service.prepare(identity, samples, cancel=cancel)
        return plan

    def _prepared(self, plan: Any) -> None:
        self.plan = plan
        self.plan_ready.emit(plan)

    def review_heading(self, plan: Any, name: str) -> str:
        who = self.target_name or clean_name(name)
        return (f"{who}: {len(plan.accepted)} face(s) will be saved"
                + (" as a new identity" if self.target_identity is None else ""))

    @staticmethod
    def duplicate_text(plan: Any) -> str:
        if not plan.duplicates:
            return ""
        text = "; ".join(f"{d.name} (score {d.score:.3f} >= {d.threshold:.3f})" for d in plan.duplicates)
        return (f"Possible duplicate: these faces already match {text}. Check it is not the same person enrolled "
                "twice (use Add images on the Identities page instead), or remove the matching faces below; "
                "Save asks again before writing.")

    def save_confirmation(self, plan: Any) -> str | None:
        """The question to ask before saving a plan that matches an existing identity (None: no need)."""
        if plan is None or not plan.duplicates:
            return None
        who = ", ".join(f"{d.name} (score {d.score:.3f})" for d in plan.duplicates)
        return (f"These faces already match {who}, at or above the identify threshold. Saving them as "
                f"{self.target_name or 'a new identity'} may enrol the same person twice, and Live would then "
                "confuse the two. Save anyway?")

    def sample_warnings(self, aligned: AlignedFace) -> tuple[str, ...]:
        """Why an accepted face deserves a second look (low quality), for the capture list."""
        from faceapp.services.enrollment import quality_score, quality_warnings

        if self.service is None:
            return ()
        return quality_warnings(quality_score(aligned.face.quality), self.service.gate)

    @staticmethod
    def low_quality_text(plan: Any) -> str:
        """The review step's summary of accepted faces flagged for low quality ("" when none)."""
        flagged = [c for c in plan.accepted if c.warnings]
        if not flagged:
            return ""
        return (f"{len(flagged)} of {len(plan.accepted)} face(s) have low quality (marked below): they match less "
                "reliably. Remove them, or go back and add larger, sharper, frontal images.")

    def remove_planned(self, rows: Sequence[int]) -> None:
        """Remove accepted faces on the review step: the plan's duplicate check is redone without them."""
        if self.busy or self.plan is None or self.service is None or not rows:
            return
        gone = {id(self.plan.accepted[r].aligned) for r in rows if 0 <= r < len(self.plan.accepted)}
        self.remove_samples([i for i, aligned in enumerate(self.samples) if id(aligned) in gone])
        self._set_busy(True, "Checking the remaining faces...", 0)
        self.run(self._without_job, self.plan, list(rows), on_result=self._prepared, on_finished=self._work_done,
                 context="Removing faces")

    def _without_job(self, plan: Any, rows: list[int]) -> Any:
        with self._service_lock:
            return self.service.without(plan, rows)

    def refused(self, plan: Any) -> list[tuple[str, str]]:
        """(source, reasons) of everything refused: by the plan, then the image files."""
        return [(c.source, "; ".join(c.reasons)) for c in plan.rejected] + self.rejected

    def save(self) -> None:
        """Write the reviewed plan in one transaction, then ``saved`` (the view asks ``save_confirmation``
        first)."""
        if self.busy or self.plan is None or self.service is None:
            return
        if self.require_challenge and not self.challenge_passed:
            self.message.emit("warning", CHALLENGE_NEEDED)
            return
        if not self.plan.accepted:
            self.message.emit("warning", "No face is left to save: go back and capture or add images.")
            return
        self._set_busy(True, "Saving in one transaction...", 0)
        self.run(self._commit_job, self.plan, on_result=self._saved, on_finished=self._work_done,
                 context="Saving the identity")

    def _commit_job(self, plan: Any) -> Any:
        with self._service_lock:
            return self.service.commit(plan)

    def _saved(self, result: Any) -> None:
        self.last_result = result
        info = result.record.identity
        verb = "Enrolled" if result.record.created else "Added to"
        self.message.emit("info", f"{verb} {info.name} ({len(result.record.template_ids)} template(s)).")
        self.plan = None
        self.clear_samples()
        self.saved.emit(result)
        self.gallery_changed.emit()

    @staticmethod
    def done_text(result: Any) -> str:
        info = result.record.identity
        verb = "Enrolled" if result.record.created else "Added to"
        return (f"{verb} {info.name}: {len(result.record.template_ids)} template(s) saved "
                f"({info.template_count} in total).")

    # -- busy -------------------------------------------------------------------------------------
    def _set_busy(self, busy: bool, text: str = "", total: int = 0) -> None:
        self.busy = busy
        self.busy_changed.emit(busy, text, total)

    def _work_done(self) -> None:
        self._set_busy(False)
        self.counts_changed.emit()

    def close(self) -> None:
        if self._video_pipeline is not None:
            self._video_pipeline.close()
            self._video_pipeline = None
        if self.service is not None:
            self.service.close()
            self.service = None
