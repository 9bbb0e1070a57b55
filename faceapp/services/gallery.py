"""The gallery service: the store plus an in-memory index of the active model, kept in sync, deciding
verify/identify and writing every decision to the audit log.

    gallery = Gallery(store, model_spec(embedder), embedder.card, operator="desk-1")
    gallery.identify(embedder.embed_one(crop), top_k=5)      # -> IdentifyDecision, audited
    gallery.verify("Alice", embedding)                        # -> VerifyDecision, audited

Sync: the store's gallery revision grows with every identity/template change (from any process).
Before each decision the service compares it with the revision the index reflects and, when it moved,
fetches only the template ids of the model, drops the rows that are gone and loads the new ones.
Only templates of this model id AND this dimension are ever loaded, so a template of another size is
never compared.
"""

from __future__ import annotations

import getpass
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from faceapp.core.errors import FaceAppError, NotFoundError
from faceapp.core.types import IdentifyDecision, VerifyDecision
from faceapp.matching import GalleryIndex, Matcher, Thresholds, resolve_thresholds
from faceapp.matching.matcher import POLICIES
from faceapp.services.audit import decision_entry, record_failure, withheld_entry
from faceapp.services.search import SearchChoice, after_changes, open_search, resolve_mode
from faceapp.storage import ModelSpec, Store, ThresholdRecord
from faceapp.storage.identities import parse_ref
from faceapp.storage.records import IdentityRef

log = logging.getLogger(__name__)


class EmbedderLike(Protocol):
    """What the services need of an embedder (``faceapp.embedding.Embedder`` fits)."""

    model_id: str
    name: str
    dim: int
    card: dict[str, Any]

    def embed(self, crops: Sequence[np.ndarray] | np.ndarray, batch_size: int = 64) -> np.ndarray: ...


def model_spec(embedder: EmbedderLike) -> ModelSpec:
    """The store's description of an embedder's model (id, name, dimension, folder, sha256, metrics)."""
    folder = getattr(embedder, "folder", None)
    card = getattr(embedder, "card", None) or {}
    metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else None
    return ModelSpec(model_id=embedder.model_id, name=embedder.name, embedding_dim=int(embedder.dim),
                     folder=str(folder) if folder else None, sha256=getattr(embedder, "weights_sha256", None),
                     metrics=metrics)


def default_operator() -> str | None:
    """$FACEAPP_OPERATOR, else the login name (recorded in audit events)."""
    name = os.environ.get("FACEAPP_OPERATOR", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


@dataclass(frozen=True)
class GalleryStatus:
    """How much of the gallery the active model can search."""

    model_id: str
    identities: int                     # identities in the store
    searchable: int                     # identities with at least one template of this model
    templates: int                      # templates of this model in the index
    skipped: int                        # templates of this model id with another dimension (never compared)
    need_reembedding: int               # crops without a template of this model
    search: str = "exact"               # the engine answering identify: exact / hnsw / ivf / pgvector
    search_notice: str | None = None    # why it is not the one asked for (a fallback), if so
    search_building: bool = False       # a FAISS index is being built in the background (answers meanwhile:
                                        # the previous index, or exact)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


INDEX_BUILDS = ("wait", "background")


class Gallery:
    """Store + synced index + thresholds for one model; thread-safe."""

    def __init__(self, store: Store, model: ModelSpec, card: Mapping[str, Any] | None = None, *,
                 operator: str | None = None, register: bool = True, search: str | None = None,
                 index_build: str = "wait") -> None:
        """``search``: the search mode (``faceapp.services.search.MODES``; None: $FACEAPP_INDEX, else auto).
        ``index_build``: "wait" (a FAISS index is built before the gallery answers: one-shot commands, which then
        save it for the next run) or "background" (interactive sessions: exact answers until it is ready)."""
        if index_build not in INDEX_BUILDS:
            raise ValueError(f"index_build={index_build!r} is not one of {', '.join(INDEX_BUILDS)}")
        self.store = store
        self.model = model
        self.card = dict(card or {})
        self.operator = operator if operator is not None else default_operator()
        self.index: GalleryIndex = GalleryIndex(model.model_id, model.embedding_dim)
        self.search = SearchChoice(mode=resolve_mode(search), background=index_build == "background")
        self.skipped = 0
        self._lock = threading.RLock()
        if register:
            store.models.register(model)     # IncompatibleError when the id was stored with another size
        self.sync()

    # --- sync ------------------------------------------------------------------------------------

    def sync(self, *, force: bool = False) -> bool:
        """Bring the index up to the store's revision; True when something was (re)loaded."""
        with self._lock:
            revision = self.store.revision()
            if revision == self.index.revision and not force:
                return False
            if self.index.revision < 0 or force:
                rows = self.store.templates.gallery_rows(self.model.model_id, self.model.embedding_dim)
                self.skipped = rows.skipped
                if rows.skipped:
                    log.warning("%d templates of model %s have another dimension and are ignored",
                                rows.skipped, self.model.model_id)
                exact = GalleryIndex(self.model.model_id, self.model.embedding_dim)
                exact.add(rows.template_ids, rows.identity_ids, rows.embeddings)
                exact.names, exact.revision = rows.names, rows.revision
                self.index, self.search = open_search(self.store, exact, self.search.mode,
                                                      background=self.search.background)
                if self.search.notice:
                    log.warning("%s", self.search.notice)
                return True
            rows, removed = self.store.templates.gallery_changes(
                self.model.model_id, self.model.embedding_dim, self.index.template_ids.copy())
            self.index.remove_templates(removed)
            self.index.add(rows.template_ids, rows.identity_ids, rows.embeddings)
            self.index.names = rows.names
            self.index.revision = rows.revision
            after_changes(self.index, self.search, np.asarray(rows.template_ids), np.asarray(rows.embeddings))
            return True

    # --- thresholds ------------------------------------------------------------------------------

    def thresholds(self) -> Thresholds:
        """Thresholds of this model: store, else model card, else defaults (``source`` says which)."""
        return resolve_thresholds(self.store.thresholds.get(self.model.model_id), self.card)

    def _thresholds_unless(self, threshold: float | None) -> Thresholds:
        """This model's thresholds, not read from the store when a per-call ``threshold`` replaces them."""
        return self.thresholds() if threshold is None else Thresholds(source="override")

    def save_thresholds(self, verify: float, identify: float, *, target_far: float | None = None,
                        source: str = "manual") -> ThresholdRecord:
        """Store thresholds for this model, through the one route ``faceapp.services.thresholds.save_thresholds``."""
        from faceapp.services.thresholds import save_thresholds

        return save_thresholds(self.store, self.model, verify=verify, identify=identify, target_far=target_far,
                               source=source, operator=self.operator)

    # --- decisions -------------------------------------------------------------------------------

    def _identity_id(self, identity: IdentityRef) -> int:
        key = parse_ref(identity)
        if isinstance(key, int) and key in self.index.names:
            return key
        if isinstance(key, str):
            for identity_id, name in self.index.names.items():
                if name == key:
                    return identity_id
        return self.store.identities.get(identity).id   # NotFoundError with the usual message

    def _probe(self, embeddings: np.ndarray) -> np.ndarray:
        """Probe embeddings in the space the gallery's templates are stored in (its secret transform when the
        gallery is unlinkable, ``faceapp.storage.unlinkable``): scores are those of the untransformed vectors."""
        return self.store.vault.protect(self.model.model_id, embeddings)

    def verify(self, identity: IdentityRef, embedding: np.ndarray, *, policy: str = "max",
               thresholds: Thresholds | None = None, threshold: float | None = None, audit: bool = True,
               details: Mapping[str, Any] | None = None, not_live: str | None = None) -> VerifyDecision:
        """Is ``embedding`` the claimed identity? Decided by the matcher at ``threshold`` when given (the
        Live slider), else at ``thresholds.verify`` / this model's verify threshold; audited unless
        ``audit=False`` (a MATCH of a probe whose liveness state ``not_live`` names is audited
        "liveness-required")."""
        if policy not in POLICIES:
            raise ValueError(f"unknown verify policy {policy!r}; known: {', '.join(POLICIES)}")
        with self._lock:
            self.sync()
            identity_id = self._identity_id(identity)
            used = thresholds or self._thresholds_unless(threshold)
            try:
                decision = Matcher(self.index, used).verify(identity_id, self._probe(embedding), policy,
                                                            threshold=threshold)
            except NotFoundError as error:
                raise NotFoundError(f"{error}; `faceapp db reembed` creates templates for the active model "
                                    "from the stored crops") from error
        if audit:
            entry = decision_entry(decision, model_id=self.model.model_id, operator=self.operator,
                                   thresholds_source=used.source if threshold is None else "override", details=details)
            if not_live is not None and decision.match:
                entry = withheld_entry(entry, not_live)
            self.store.audit.append(entry, queue_when_locked=True)
        return decision

    def identify(self, embedding: np.ndarray, *, top_k: int = 5, thresholds: Thresholds | None = None,
                 threshold: float | None = None, ambiguity_margin: float = 0.0, audit: bool = True,
                 details: Mapping[str, Any] | None = None, not_live: str | None = None) -> IdentifyDecision:
        """Who is this? Ranked candidates and "unknown" under ``threshold`` when given, else under
        ``thresholds.identify`` / this model's identify threshold, "ambiguous" when the top two are within
        ``ambiguity_margin`` (the matcher decides); audited (a name given to a probe whose liveness state
        ``not_live`` names is audited "liveness-required")."""
        with self._lock:
            self.sync()
            used = thresholds or self._thresholds_unless(threshold)
            decision = Matcher(self.index, used).identify(self._probe(embedding), top_k, threshold=threshold,
                                                          ambiguity_margin=ambiguity_margin)
        if audit:
            entry = decision_entry(decision, model_id=self.model.model_id, operator=self.operator,
                                   thresholds_source=used.source if threshold is None else "override",
                                   details={"top_k": top_k, **(details or {})})
            if not_live is not None and decision.identity_id is not None:
                entry = withheld_entry(entry, not_live)
            self.store.audit.append(entry, queue_when_locked=True)
        return decision

    def record_failure(self, operation: str, error: FaceAppError, *, identity: IdentityRef | None = None,
                       details: Mapping[str, Any] | None = None) -> None:
        """Audit an attempt that ``error`` stopped (no face, unknown name, unreadable probe...), with this
        gallery's model and operator (``faceapp.services.audit.record_failure``)."""
        record_failure(self.store, operation, error, model_id=self.model.model_id, operator=self.operator,
                       identity_name=None if identity is None else str(identity), details=details)

    def best_other(self, embeddings: np.ndarray, *, exclude: int | None = None) -> tuple[int, float] | None:
        """The best-matching identity (other than ``exclude``) over several probe embeddings, or None."""
        with self._lock:
            self.sync()
            best: tuple[int, float] | None = None
            for vector in np.atleast_2d(self._probe(embeddings)):
                others = [(i, s) for i, s in self.index.top_identities(vector, 2) if i != exclude]
                if others and (best is None or others[0][1] > best[1]):
                    best = others[0]
            return best

    def status(self) -> GalleryStatus:
        """Counts of what this model can and cannot search."""
        with self._lock:
            self.sync()
            return GalleryStatus(
                model_id=self.model.model_id, identities=self.store.identities.count(),
                searchable=self.index.identity_count, templates=len(self.index), skipped=self.skipped,
                need_reembedding=self.store.templates.count_crops_to_embed(self.model.model_id),
                search=self.search.engine, search_notice=self.search.notice or getattr(self.index, "build_error", None),
                search_building=bool(getattr(self.index, "building", False)))
