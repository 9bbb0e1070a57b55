"""The Identities page model: the gallery as a searchable list, one selected identity with its samples, and
the use cases (edit, rename, delete an identity or a sample, export and import the gallery as a zip file in
``faceapp.storage.transfer``'s ``faceapp-gallery/1`` format). Qt-free.

Slow work (SQL, files) goes through the ``run`` callable the owner passes in, with the signature of
``AppContext.run``: ``run(func, *args, on_result=callback, context="Doing X", **kwargs)``. The GUI runs
``func`` on a worker and calls ``on_result`` on the GUI thread; a test or a script runs both at once.
The model never raises for user errors through ``run``: the runner reports them (the GUI's banner);
``faceapp.app.events.run_now`` runs at once and lets them through.

Events (``faceapp.app.events.Event``):
- ``listed()``: ``rows`` changed (then ``selected_id`` says what to select, if anything);
- ``detail_changed(detail | None)``: the selected identity's detail was loaded or cleared;
- ``message(level, text)``: something to tell the operator (info / warning);
- ``gallery_changed()``: identities or templates changed (other pages must refresh).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from faceapp.app.events import Event, run_now  # noqa: F401 - run_now re-exported

Runner = Callable[..., Any]


class Session(Protocol):
    """What the page needs of the workstation (``Workstation`` and the GUI's ``AppContext`` fit)."""

    store: Any
    embedder: Any
    gallery: Any


@dataclass
class Sample:
    """One enrolled sample of an identity: its crop (if stored) and the templates made from it."""

    crop_id: int | None
    image: Any                  # BGR crop or None
    quality: float | None
    source: str
    created: Any
    template_ids: list[int]
    models: list[str]


@dataclass
class IdentityDetail:
    """Everything the detail view shows (loaded on a worker)."""

    info: Any
    samples: list[Sample]


def load_detail(store: Any, identity_id: int) -> IdentityDetail:
    """An identity with its samples: crops joined with their templates, then crop-less templates (worker)."""
    info = store.identities.get(identity_id)
    crops = store.templates.crops(identity_id)
    templates = store.templates.for_identity(identity_id)
    by_crop: dict[int, list[Any]] = {}
    loose = []
    for template in templates:
        if template.crop_id is None:
            loose.append(template)
        else:
            by_crop.setdefault(template.crop_id, []).append(template)
    samples = []
    for crop in crops:
        made = by_crop.get(crop.id, [])
        samples.append(Sample(crop.id, crop.image(), crop.quality, crop.source or "", crop.created_at,
                              [t.id for t in made], sorted({t.model_id for t in made})))
    for template in loose:
        samples.append(Sample(None, None, template.quality, template.source or "", template.created_at,
                              [template.id], [template.model_id]))
    return IdentityDetail(info, samples)


def load_list(store: Any, search: str) -> list[tuple[Any, Any]]:
    """(IdentityInfo, first crop or None) for the identities matching ``search`` (worker). Names need no gallery
    key: when the key cannot be had (reported when the gallery loads) or a crop fails its check (reported when
    that person is opened), the list still shows everyone, without those thumbnails."""
    from faceapp.core.errors import GalleryKeyError, TamperedDataError

    rows, key_usable = [], True
    for info in store.identities.list(search or None, limit=2000):
        thumbnail = None
        if info.crop_count and key_usable:
            try:
                crops = store.templates.crops(info.id)
                thumbnail = crops[0].image() if crops else None
            except GalleryKeyError:
                key_usable = False
            except TamperedDataError:
                pass
        rows.append((info, thumbnail))
    return rows


def when_text(value: Any) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value is not None else "-"


class IdentitiesModel:
    """State and use cases of the Identities page (see the module docstring)."""

    def __init__(self, session: Session, run: Runner = run_now) -> None:
        self.session = session
        self.run = run
        self.search = ""
        self.rows: list[tuple[Any, Any]] = []
        self.selected_id: int | None = None     # the identity shown (or to show once listed)
        self.detail: IdentityDetail | None = None
        self.last_transfer: dict | None = None
        self.list_error: str | None = None      # why the list could not be read (damaged database)
        self.loads = 0                          # list loads completed (tests wait on it)
        self.listed = Event("listed")
        self.detail_changed = Event("detail_changed")
        self.message = Event("message")
        self.gallery_changed = Event("gallery_changed")

    # -- what the session offers ------------------------------------------------------------------
    @property
    def store(self) -> Any:
        return self.session.store

    @property
    def available(self) -> bool:
        return self.store is not None

    @property
    def operator(self) -> str | None:
        return getattr(self.session.gallery, "operator", None)

    @property
    def active_model(self) -> str | None:
        return getattr(self.session.embedder, "model_id", None)

    # -- the list ---------------------------------------------------------------------------------
    def set_search(self, text: str) -> None:
        self.search = text.strip()

    def refresh(self) -> None:
        """Reload the list (keeping the selection); without a database, an empty list."""
        store = self.store
        if store is None:
            self.rows = []
            self.listed.emit()
            return
        self.run(load_list, store, self.search, on_result=self._listed, on_error=self._list_failed,
                 context="Listing identities")

    def _list_failed(self, error: BaseException) -> None:
        """The database opened but cannot be read (damaged, or changed under us): an error state, not an
        empty gallery."""
        from faceapp.app.errors import describe_error

        self.list_error = describe_error(error)[1]
        self.rows = []
        self.listed.emit()

    def empty_state(self, *, loading: bool = False) -> tuple[str, str] | None:
        """What the page says when no identity is listed: (role, text) of an error with its reason and what to
        do ("status-bad"), of an empty gallery or search ("muted"); None while loading or when rows exist."""
        if self.rows or loading:
            return None
        reason = self.list_error if self.store is not None else getattr(self.session, "errors", {}).get("database")
        if self.store is None and reason is None:
            return "status-bad", "No database is open."
        if reason is not None:
            return "status-bad", (f"The identities cannot be read: {reason}\n\nNothing was changed. What to do: check "
                                  "the file with `faceapp db check`, restore a backup (`faceapp db backup` makes "
                                  "one), or start with another database (--db FILE or FACEAPP_DB); then File > "
                                  "Reload (Ctrl+R).")
        if self.search:
            return "muted", f"No identity matches '{self.search}'."
        return "muted", "No identities yet: enrol someone on the Enroll page."

    def _listed(self, rows: list[tuple[Any, Any]]) -> None:
        self.list_error = None
        self.rows = rows
        if self.detail is not None and not self.is_listed(self.detail.info.id):
            self.detail = None                  # filtered out: hidden, but selected again once listed
            self.detail_changed.emit(None)
        self.loads += 1
        self.listed.emit()

    def names(self) -> list[str]:
        """Names in the list, in order."""
        return [info.name for info, _ in self.rows]

    def count_text(self, *, loading: bool = False) -> str:
        if self.store is None:
            return "Loading..." if loading else "No database"
        if self.list_error is not None:
            return "Cannot read the identities"
        total = len(self.rows)
        return (f"{total} identit{'y' if total == 1 else 'ies'}"
                + (f" matching '{self.search}'" if self.search else ""))

    def is_listed(self, identity_id: int) -> bool:
        return any(info.id == identity_id for info, _ in self.rows)

    # -- the selected identity --------------------------------------------------------------------
    def select(self, identity_id: int | None) -> None:
        """Show ``identity_id`` (its detail loads; None clears the detail)."""
        self.selected_id = identity_id
        if identity_id is None:
            if self.detail is not None:
                self.detail = None
            self.detail_changed.emit(None)
            return
        if self.store is not None:
            self.run(load_detail, self.store, identity_id, on_result=self._detail_loaded,
                     context="Loading the identity")

    def _detail_loaded(self, detail: IdentityDetail) -> None:
        if self.selected_id not in (None, detail.info.id):
            return   # a late answer for an identity no longer selected
        self.detail = detail
        self.detail_changed.emit(detail)

    def meta_text(self, detail: IdentityDetail) -> str:
        info = detail.info
        model = self.active_model
        active = info.template_counts.get(model, 0) if model else 0
        return (f"{info.template_count} template(s) from {info.crop_count} stored crop(s); {active} for the active "
                f"model. Consent: {when_text(info.consent_at)}. Created {when_text(info.created_at)}, updated "
                f"{when_text(info.updated_at)}.")

    def models_text(self, sample: Sample) -> tuple[str, str]:
        """(cell text, tooltip) of a sample's models; the active model is starred."""
        model = self.active_model
        text = ", ".join(m.split("@")[0] + ("*" if m == model else "") for m in sample.models) or "none yet"
        tip = "\n".join(sample.models) + ("\n* = active model" if model in sample.models else "")
        return text, tip

    # -- edits ------------------------------------------------------------------------------------
    def save(self, name: str, external_id: str | None, notes: str | None) -> None:
        """Store the edited name, external id and notes of the selected identity."""
        if self.detail is None or self.store is None:
            return
        self.run(self._update_job, self.store, self.detail.info.id, name, external_id or None, notes or None,
                 on_result=self._changed, context="Saving the identity")

    def _update_job(self, store: Any, identity_id: int, name: str, external_id: str | None, notes: str | None) -> Any:
        return store.identities.update(identity_id, name=name, external_id=external_id, notes=notes,
                                       operator=self.operator)

    def rename(self, identity_id: int, new_name: str) -> None:
        if self.store is None:
            return
        self.run(self.store.identities.rename, identity_id, new_name, operator=self.operator,
                 on_result=self._changed, context="Renaming")

    def _changed(self, info: Any) -> None:
        self.selected_id = info.id
        self.message.emit("info", f"Saved {info.name}.")
        self.gallery_changed.emit()

    def delete_identity(self, identity_id: int) -> None:
        """Delete an identity with its templates and crops (no confirmation: the view asks)."""
        if self.store is None:
            return
        self.run(self.store.identities.delete, identity_id, operator=self.operator, on_result=self._deleted,
                 context="Deleting the identity")

    def _deleted(self, report: Any) -> None:
        erased = (f" Also erased from {len(report.backups_erased)} backup(s)/crop folder(s) FaceApp made."
                  if report.backups_erased else "")
        self.message.emit("info", f"Deleted {report.name}: {report.templates} template(s), {report.crops} crop(s)."
                          + erased)
        out_of_reach = list(report.backups_missing) + list(report.backups_failed)
        if out_of_reach:
            self.message.emit("warning", f"{report.name} could not be erased from {len(out_of_reach)} cop(ies) "
                              f"FaceApp made (moved, removed or not writable): {'; '.join(out_of_reach)}. Delete "
                              "them there yourself, or run `faceapp db rotate-key --full`.")
        if self.selected_id == report.identity_id:
            self.select(None)
        self.gallery_changed.emit()

    def sample_problem(self, sample: Sample | None) -> tuple[str, str] | None:
        """Why ``sample`` cannot be deleted, as (level, text); None when it can."""
        if sample is None or self.detail is None:
            return "info", "Select a sample in the table first."
        if not sample.template_ids:
            return "warning", "This crop has no template yet (it waits for re-embedding); it cannot be deleted alone."
        return None

    def delete_sample(self, template_id: int) -> None:
        """Delete one sample: its crop and every template made from it."""
        if self.store is None or self.detail is None:
            return
        self.selected_id = self.detail.info.id
        self.run(self.store.templates.delete_sample, template_id, operator=self.operator,
                 on_result=self._sample_deleted, context="Deleting the sample")

    def _sample_deleted(self, count: int) -> None:
        self.message.emit("info", f"Deleted the sample ({count} template(s)).")
        self.gallery_changed.emit()

    # -- export / import --------------------------------------------------------------------------
    def export_gallery(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Write the gallery to a zip file; a message reports what was written."""
        from faceapp.storage.transfer import export_gallery

        if self.store is None:
            return
        self.run(export_gallery, self.store, Path(path), overwrite=overwrite, on_result=self._exported,
                 context="Exporting the gallery")

    def _exported(self, summary: dict) -> None:
        counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in summary.items() if isinstance(v, int))
        self.last_transfer = summary
        self.message.emit("info", f"Gallery exported to {summary.get('path', 'the file')}: {counts}.")

    def import_gallery(self, path: str | Path, *, on_conflict: str = "fail") -> None:
        """Add a gallery zip in one transaction; re-embedding may be needed for the active model."""
        from faceapp.storage.transfer import import_gallery

        if self.store is None:
            return
        self.run(import_gallery, self.store, Path(path), on_conflict=on_conflict, operator=self.operator,
                 on_result=self._imported, context="Importing the gallery")

    def _imported(self, summary: dict) -> None:
        counts = ", ".join(f"{v} {k}" for k, v in summary.items() if isinstance(v, int))
        self.last_transfer = summary
        self.message.emit("info", f"Gallery imported: {counts}.")
        self.gallery_changed.emit()
