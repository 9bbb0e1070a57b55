"""Enrolment: several images or frames of one person -> quality-gated aligned crops -> embeddings ->
one transaction that writes the identity with all its crops and templates (or nothing).

    service = EnrollmentService(store, embedder)                  # FacePipeline + QualityGate by default
    result = run_to_completion(service.enroll(NewIdentity("Alice"), ["a1.jpg", "a2.jpg"]), print_progress)
    result.rejected        # [SampleCheck(source, reasons=("no face found",)), ...]
    result.duplicates      # [DuplicateWarning(name="Bob", score=0.71, ...)] when she already looks like Bob

The GUI's wizard uses the two halves: ``assess(frame)`` per live frame (accepted or reasons + hints),
then ``prepare(...)`` on the accepted faces (shows crops and duplicate warnings) and ``commit(plan)``.
Each image must show exactly one face that passes the quality gate (size, sharpness, brightness, pose).

The accepted faces must also agree with each other: with a trained model, two faces of one person score
at or above the verify threshold (the one in force, or the model card's calibrated one when that is lower), so the images are grouped by those pairs (connected components). More
than one group means photos of different people under one name, and ``prepare`` refuses with
``MixedIdentityError`` naming the groups, unless the service was built with ``allow_mixed=True`` (the
CLI's ``--allow-different``); the plan keeps the groups either way. An untrained model's scores mean
nothing, so it is not checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, Union

import numpy as np

from faceapp.core.errors import (
    CancelledError, ExitCode, FaceAppError, InputFileError, NoFaceError, NotFoundError, QualityError,
    SeveralFacesError,
)
from faceapp.core.progress import CancelToken, EtaClock, Job, Progress
from faceapp.core.types import AlignedFace, FaceQuality
from faceapp.services.audit import record_failure
from faceapp.services.gallery import EmbedderLike, Gallery, default_operator, model_spec
from faceapp.storage import EnrollmentRecord, NameInUseError, NewIdentity, NewSample, Store
from faceapp.storage.identities import clean_text
from faceapp.storage.records import IdentityRef

if TYPE_CHECKING:
    from faceapp.vision.pipeline import FacePipeline
    from faceapp.vision.quality import QualityGate

EnrollInput = Union[str, Path, np.ndarray, AlignedFace]


@dataclass(frozen=True)
class SampleCheck:
    """The verdict on one offered image or frame."""

    source: str
    accepted: bool
    reasons: tuple[str, ...] = ()          # why it was rejected (empty when accepted)
    hints: tuple[str, ...] = ()            # what the person should do ("move closer", ...)
    faces: int = 0                         # faces found
    aligned: AlignedFace | None = field(default=None, repr=False, compare=False)
    quality: float | None = None           # 0..1 summary (see ``quality_score``)
    problem: ExitCode | None = None        # why rejected: INPUT_FILE, NO_FACE, SEVERAL_FACES or QUALITY
    warnings: tuple[str, ...] = ()         # accepted, but worth a look (low quality)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "accepted": self.accepted, "reasons": list(self.reasons),
                "hints": list(self.hints), "faces": self.faces, "quality": self.quality,
                "problem": None if self.problem is None else self.problem.name.lower(),
                "warnings": list(self.warnings)}


_NOTHING_ACCEPTED: dict[ExitCode, type[FaceAppError]] = {
    ExitCode.INPUT_FILE: InputFileError, ExitCode.NO_FACE: NoFaceError, ExitCode.SEVERAL_FACES: SeveralFacesError,
}


def nothing_accepted_error(rejected: Sequence[SampleCheck]) -> FaceAppError:
    """The error for an enrolment where no image was accepted: when every image failed the same way (all
    unreadable, all without a face, all with several faces) its own error - so ``enroll`` exits with the code
    ``detect``/``embed`` give the same files - else a QualityError listing each image's reasons."""
    detail = "; ".join(f"{c.source}: {', '.join(c.reasons)}" for c in rejected) or "no images given"
    problems = {c.problem for c in rejected}
    kind = _NOTHING_ACCEPTED.get(problems.pop()) if len(problems) == 1 else None
    error = (kind or QualityError)(f"no image was accepted for enrolment ({detail})")
    if kind is InputFileError and len(rejected) == 1:
        error.path = rejected[0].source
    return error


@dataclass(frozen=True)
class DuplicateWarning:
    """The new face already matches another identity at or above the identify threshold."""

    identity_id: int
    name: str
    score: float
    threshold: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class MixedIdentityError(QualityError):
    """The images offered for one identity look like several people (see the module docstring)."""


@dataclass
class EnrollmentPlan:
    """Everything checked and embedded, not yet written: shown to the operator, then committed."""

    identity: NewIdentity | IdentityRef
    accepted: list[SampleCheck]
    rejected: list[SampleCheck]
    embeddings: np.ndarray
    duplicates: list[DuplicateWarning]
    model_id: str
    groups: list[list[int]] = field(default_factory=list)   # indexes into accepted that agree (one group: fine)


def agreeing_groups(embeddings: np.ndarray, threshold: float) -> list[list[int]]:
    """The rows of ``embeddings`` grouped so that rows scoring >= ``threshold`` (cosine) share a group
    (connected components), largest group first."""
    count = len(embeddings)
    scores = embeddings @ embeddings.T
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(count):
        for j in range(i + 1, count):
            if scores[i, j] >= threshold:
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(count):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


@dataclass(frozen=True)
class EnrollmentResult:
    """What an enrolment wrote and what it refused."""

    record: EnrollmentRecord
    accepted: tuple[SampleCheck, ...]
    rejected: tuple[SampleCheck, ...]
    duplicates: tuple[DuplicateWarning, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "identity": self.record.identity.as_dict(), "created": self.record.created,
            "templates_added": len(self.record.template_ids), "crops_added": len(self.record.crop_ids),
            "accepted": [s.as_dict() for s in self.accepted], "rejected": [s.as_dict() for s in self.rejected],
            "duplicates": [d.as_dict() for d in self.duplicates],
        }


def quality_score(quality: FaceQuality | None) -> float | None:
    """A 0..1 summary of a face's quality for sorting and display (1 = large, sharp, frontal).

    Product of: eye distance / 80 px, sharpness / 300, and 1 - (largest pose angle / 90), each capped at 1.
    """
    if quality is None:
        return None
    size = min(1.0, quality.interocular / 80.0)
    sharp = min(1.0, quality.sharpness / 300.0)
    angles = [abs(a) for a in (quality.yaw, quality.pitch, quality.roll) if a is not None]
    pose = max(0.0, 1.0 - max(angles) / 90.0) if angles else 1.0
    return round(size * sharp * pose, 4)


def quality_warnings(quality: float | None, gate: "QualityGate") -> tuple[str, ...]:
    """Why an accepted face deserves a second look: its summary quality is below the gate's warn level."""
    level = gate.warn_quality
    if quality is None or level is None or quality >= level:
        return ()
    return (f"low quality {quality:.2f} (below {level:.2f}): a small, soft or turned face matches less reliably; "
            "prefer a larger, sharper, frontal one",)


def _label(item: EnrollInput, number: int) -> str:
    if isinstance(item, (str, Path)):
        return str(item)
    if isinstance(item, AlignedFace) and item.source:
        return item.source
    return f"image {number}"


class EnrollmentService:
    """Quality-gated, duplicate-checked, transactional enrolment (see module docstring)."""

    def __init__(self, store: Store, embedder: EmbedderLike, *, pipeline: "FacePipeline | None" = None,
                 gate: "QualityGate | None" = None, gallery: Gallery | None = None, operator: str | None = None,
                 store_crops: bool = True, duplicate_check: bool = True, allow_mixed: bool = False) -> None:
        self.store = store
        self.embedder = embedder
        self.model = model_spec(embedder)
        self.operator = operator if operator is not None else default_operator()
        self.store_crops = store_crops
        self.duplicate_check = duplicate_check
        self.allow_mixed = allow_mixed
        self._pipeline = pipeline
        self._own_pipeline = pipeline is None
        if gate is None:
            from faceapp.vision.quality import QualityGate

            gate = QualityGate()
        self.gate = gate
        self._gallery = gallery

    # --- resources -------------------------------------------------------------------------------

    @property
    def pipeline(self) -> "FacePipeline":
        """The face pipeline, created on first use (image mode) when none was given."""
        if self._pipeline is None:
            from faceapp.vision.pipeline import FacePipeline

            self._pipeline = FacePipeline("image")
        return self._pipeline

    @property
    def gallery(self) -> Gallery:
        """The gallery of the embedder's model (duplicate check), loaded on first use."""
        if self._gallery is None:
            self._gallery = Gallery(self.store, self.model, self.embedder.card, operator=self.operator)
        return self._gallery

    def close(self) -> None:
        """Close the pipeline if this service created it."""
        if self._own_pipeline and self._pipeline is not None:
            self._pipeline.close()
            self._pipeline = None

    def __enter__(self) -> "EnrollmentService":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one sample ------------------------------------------------------------------------------

    def assess_aligned(self, aligned: AlignedFace, source: str = "") -> SampleCheck:
        """Gate an already detected and aligned face (live frames)."""
        reasons = self.gate.check(aligned.face)
        hints = self.gate.hints(aligned.face)
        quality = quality_score(aligned.face.quality)
        return SampleCheck(source=source or aligned.source, accepted=not reasons, reasons=tuple(reasons),
                           hints=tuple(hints), faces=1, aligned=aligned, quality=quality,
                           warnings=quality_warnings(quality, self.gate) if not reasons else (),
                           problem=ExitCode.QUALITY if reasons else None)

    def assess(self, image: np.ndarray, source: str = "") -> SampleCheck:
        """Detect, align and gate a BGR image: exactly one face that passes the quality gate."""
        faces = self.pipeline.process(image)
        if not faces:
            return SampleCheck(source, False, ("no face found",), ("look at the camera",), faces=0,
                               problem=ExitCode.NO_FACE)
        if len(faces) > 1:
            return SampleCheck(source, False, (f"{len(faces)} faces found: exactly one person must be in the "
                                               "picture",), ("only one person in view",), faces=len(faces),
                               problem=ExitCode.SEVERAL_FACES)
        faces[0].source = source
        return self.assess_aligned(faces[0], source)

    def assess_input(self, item: EnrollInput, number: int = 1) -> SampleCheck:
        """``assess`` for a path (read here; unreadable files are rejected with the reason), array or AlignedFace."""
        source = _label(item, number)
        if isinstance(item, AlignedFace):
            return self.assess_aligned(item, source)
        if isinstance(item, (str, Path)):
            from faceapp.capture.images import read_image

            try:
                item = read_image(item)
            except FaceAppError as error:
                return SampleCheck(source, False, (str(error),), problem=error.exit_code)
        return self.assess(np.asarray(item), source)

    # --- enrolment -------------------------------------------------------------------------------

    def _check_target(self, identity: NewIdentity | IdentityRef) -> int | None:
        """Fail early: a new name must be free, an existing identity must exist. Returns its id when adding."""
        if isinstance(identity, NewIdentity):
            existing = self.store.identities.find(clean_text(identity.name, "name"))
            if existing is not None:
                raise NameInUseError(
                    f"identity {existing.name!r} already exists (id {existing.id}, {existing.template_count} "
                    "templates): add images to it (`faceapp enroll --add`) or choose another name")
            return None
        try:
            return self.store.identities.get(identity).id
        except NotFoundError as error:
            raise NotFoundError(f"{error}; enrol it without --add to create it") from error

    def prepare(self, identity: NewIdentity | IdentityRef, inputs: Sequence[EnrollInput], *,
                cancel: CancelToken | None = None) -> Job[EnrollmentPlan]:
        """Assess every input, embed the accepted faces and check for duplicates; writes nothing.

        Raises ``nothing_accepted_error(rejected)`` when no input is accepted.
        """
        cancel = cancel or CancelToken()
        existing_id = self._check_target(identity)
        accepted: list[SampleCheck] = []
        rejected: list[SampleCheck] = []
        clock = EtaClock(len(inputs))
        for number, item in enumerate(inputs, 1):
            cancel.raise_if_cancelled("enrolment")
            check = self.assess_input(item, number)
            (accepted if check.accepted else rejected).append(check)
            yield Progress("assess", number, len(inputs), message=f"{check.source}: "
                           f"{'accepted' if check.accepted else '; '.join(check.reasons)}", eta_s=clock.eta(number),
                           metrics={"accepted": len(accepted), "rejected": len(rejected)})
        if not accepted:
            raise nothing_accepted_error(rejected)
        cancel.raise_if_cancelled("enrolment")
        yield Progress("embed", 0, len(accepted), message=f"embedding {len(accepted)} faces")
        embeddings = self.embedder.embed([c.aligned.image for c in accepted])
        yield Progress("embed", len(accepted), len(accepted))
        groups = self._agreement(accepted, embeddings, existing_id)
        return EnrollmentPlan(identity=identity, accepted=accepted, rejected=rejected, embeddings=embeddings,
                              duplicates=self._duplicates(embeddings, existing_id), model_id=self.model.model_id,
                              groups=groups)

    def _agreement_threshold(self) -> float:
        """The verify threshold in force, but never stricter than the model card's calibrated one: a gallery
        run at a very low false-accept rate must not refuse genuine photos of one person."""
        from faceapp.matching.thresholds import from_model_card

        threshold = self.gallery.thresholds().verify
        calibrated = from_model_card(self.embedder.card) if self.embedder.card else None
        return min(threshold, calibrated.verify) if calibrated is not None else threshold

    def _agreement(self, accepted: list[SampleCheck], embeddings: np.ndarray, existing_id: int | None) -> list[list[int]]:
        """Group the accepted faces by agreement at the verify threshold (templates already stored for an
        identity being added to join the check); MixedIdentityError for several groups unless allowed."""
        everyone = list(range(len(accepted)))
        if not getattr(self.embedder, "trained", False):
            return [everyone]
        stored = np.zeros((0, embeddings.shape[1]), np.float32)
        if existing_id is not None:
            stored = np.asarray([t.embedding for t in self.store.templates.for_identity(existing_id)
                                 if t.model_id == self.model.model_id and t.dim == embeddings.shape[1]], np.float32)
            stored = stored.reshape(-1, embeddings.shape[1])
        if len(accepted) + len(stored) < 2:
            return [everyone]
        threshold = self._agreement_threshold()
        groups = agreeing_groups(np.concatenate([embeddings, stored]), threshold)
        if len(groups) == 1 or self.allow_mixed:
            return [[i for i in g if i < len(accepted)] for g in groups if any(i < len(accepted) for i in g)]
        combined = np.concatenate([embeddings, stored])
        scores = combined @ combined.T
        between = max(float(scores[np.ix_(a, b)].max()) for a in groups for b in groups if a is not b)

        def describe(group: list[int]) -> str:
            return ", ".join(accepted[i].source if i < len(accepted) else f"stored template {i - len(accepted) + 1}"
                             for i in group[:4]) + (f" and {len(group) - 4} more" if len(group) > 4 else "")

        listed = "; ".join(f"group {n}: {describe(g)}" for n, g in enumerate(groups, 1))
        raise MixedIdentityError(
            f"the images do not look like one person: they form {len(groups)} groups that score under the verify "
            f"threshold {threshold:.3f} with each other (best {between:.3f}) - {listed}. Enrol each person under "
            "their own name, or pass --allow-different if they really are one person")

    def _duplicates(self, embeddings: np.ndarray, existing_id: int | None) -> list[DuplicateWarning]:
        """Another identity the new faces already match at or above the identify threshold."""
        if not self.duplicate_check or len(embeddings) == 0:
            return []
        found = self.gallery.best_other(embeddings, exclude=existing_id)
        threshold = self.gallery.thresholds().identify
        if found is None or found[1] < threshold:
            return []
        return [DuplicateWarning(found[0], self.gallery.index.name(found[0]), found[1], threshold)]

    def without(self, plan: EnrollmentPlan, rows: Sequence[int]) -> EnrollmentPlan:
        """``plan`` less the accepted faces at ``rows`` (removed on review), its duplicate check redone on the
        faces that remain (removing the face that matched someone else clears the warning)."""
        drop = set(int(r) for r in rows)
        keep = [i for i in range(len(plan.accepted)) if i not in drop]
        embeddings = plan.embeddings[keep] if keep else plan.embeddings[:0]
        renumber = {old: new for new, old in enumerate(keep)}
        groups = [[renumber[i] for i in group if i in renumber] for group in plan.groups]
        return EnrollmentPlan(identity=plan.identity, accepted=[plan.accepted[i] for i in keep],
                              rejected=plan.rejected, embeddings=embeddings,
                              duplicates=self._duplicates(embeddings, self._check_target(plan.identity)),
                              model_id=plan.model_id, groups=[g for g in groups if g])

    def commit(self, plan: EnrollmentPlan) -> EnrollmentResult:
        """Write the plan in one transaction: the identity (when new), every crop and template, an audit row."""
        if plan.model_id != self.model.model_id:
            raise ValueError("the plan was prepared with another model")
        samples = [NewSample(crop=c.aligned.image if self.store_crops else None, embedding=vector,
                             quality=c.quality, source=c.source) for c, vector in zip(plan.accepted, plan.embeddings)]
        details: dict[str, Any] = {"rejected": len(plan.rejected)}
        if plan.duplicates:
            details["possible_duplicate_of"] = [[d.identity_id, round(d.score, 6)] for d in plan.duplicates]
        record = self.store.templates.enroll(plan.identity, samples, self.model, operator=self.operator, details=details)
        return EnrollmentResult(record=record, accepted=tuple(plan.accepted), rejected=tuple(plan.rejected),
                                duplicates=tuple(plan.duplicates))

    def enroll(self, identity: NewIdentity | IdentityRef, inputs: Sequence[EnrollInput], *,
               cancel: CancelToken | None = None) -> Job[EnrollmentResult]:
        """``prepare`` then ``commit``: a generator of Progress returning the EnrollmentResult."""
        cancel = cancel or CancelToken()
        try:
            plan = yield from self.prepare(identity, inputs, cancel=cancel)
            if cancel.cancelled:
                raise CancelledError("enrolment cancelled before saving: nothing was written")
            yield Progress("save", 0, 1, message="saving in one transaction")
            result = self.commit(plan)
        except FaceAppError as error:            # every attempt is audited: refused, or the database locked
            name = identity.name if isinstance(identity, NewIdentity) else str(identity)
            record_failure(self.store, "enroll", error, model_id=self.model.model_id, operator=self.operator,
                           identity_name=name, details={"images": len(inputs)})
            raise
        yield Progress("save", 1, 1)
        return result
