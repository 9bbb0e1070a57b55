"""Gallery commands: ``faceapp enroll``, ``identities list|show|rename|delete``, ``verify``, ``identify``
and ``audit``. Every verify/identify decision is written to the audit log.

The database is ``--db URL`` (or a SQLite file path), else $FACEAPP_DB, else the SQLite file in the
user data folder; an older database is upgraded on open, a newer one refused. The operator recorded
in audit events is ``--operator``, else $FACEAPP_OPERATOR, else the login name.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from faceapp.cli.commands.pipeline import (
    add_embed_options, add_vision_options, load_embedder, open_pipeline, workstation,
)
from faceapp.cli.output import emit, print_progress
from faceapp.core.errors import ExitCode
from faceapp.core.progress import run_to_completion
from faceapp.matching.matcher import DEFAULT_AMBIGUITY_MARGIN, check_ambiguity_margin
from faceapp.core.text import visible
from faceapp.services.search import MODES as SEARCH_MODES
from faceapp.storage.records import OPERATIONS, FieldError

VERIFY_POLICIES = ("max", "mean", "centroid")   # see faceapp.matching.matcher



# ------------------------------------------------------------------------------------------- shared options
def add_liveness_flag(parser: argparse.ArgumentParser) -> None:
    """--liveness (require a passive liveness pass before MATCH / an identification) and --pad-model-dir."""
    group = parser.add_argument_group("liveness")
    group.add_argument("--liveness", action="store_true",
                       help="also check the probe face for a presentation attack (passive MiniFASNet); the answer "
                            f"is accepted only when live. Exit {int(ExitCode.ATTACK_SUSPECTED)} attack suspected, "
                            f"{int(ExitCode.MODEL_ASSET)} PAD weights missing (audited)")
    add_pad_model_option(group)


def add_pad_model_option(parser) -> None:  # noqa: ANN001 - a parser or an argument group
    """--pad-model-dir: where the MiniFASNet weights are."""
    parser.add_argument("--pad-model-dir", type=Path, metavar="DIR",
                        help="folder holding the MiniFASNet .pth files (searched before $FACEAPP_PAD_MODEL_DIR, "
                             "<data>/pad_models and ../shared/pad_models)")


def add_store_options(parser: argparse.ArgumentParser, *, operator: bool = True) -> None:
    """--db, --json and (for commands that write audit events) --operator."""
    parser.add_argument("--db", metavar="URL", help="database: SQLAlchemy URL or SQLite file "
                                                    "(default $FACEAPP_DB, else faceapp.db in the user data folder)")
    parser.add_argument("--index", choices=SEARCH_MODES, default=None,
                        help="gallery search: auto (default; $FACEAPP_INDEX): pgvector on PostgreSQL with the "
                             "extension, FAISS from 200,000 templates, else exact; or exact, faiss, hnsw, ivf, pgvector")
    if operator:
        parser.add_argument("--operator", metavar="NAME", type=operator_text,
                            help="operator recorded in the audit log (default $FACEAPP_OPERATOR, else login name)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def operator_text(text: str) -> str:
    """An argparse ``type`` for --operator: a name in normal form, not empty, without control or invisible
    characters (the same rules as identity names)."""
    from faceapp.storage.identities import clean_text

    try:
        return clean_text(text, "operator")
    except FieldError as error:
        raise argparse.ArgumentTypeError(str(error).replace("identity operator", "operator name")) from None


def open_store(args: argparse.Namespace):  # noqa: ANN201 - Store
    """The workstation's Store (--db, upgraded on open); says so on stderr when it upgraded the schema.
    A command that records an operator and was given none gets the default one here (``default_operator``:
    $FACEAPP_OPERATOR, else the login name), so every row it audits names who did it."""
    if getattr(args, "operator", False) is None:
        from faceapp.services.gallery import default_operator

        args.operator = default_operator()
    store = workstation(args).store
    if store.upgraded and store.schema_before and store.schema_before.current is not None:
        print(f"note: upgraded database {store.where} from schema {store.schema_before.current} to "
              f"{store.schema_before.head}", file=sys.stderr)
    return store


def open_gallery(args: argparse.Namespace):  # noqa: ANN201 - Gallery
    """The workstation's gallery of the active model; warns when stored faces are not searchable with it."""
    ws = workstation(args)
    gallery = ws.gallery
    embedder = ws.embedder
    status = gallery.status()
    if status.need_reembedding:
        print(f"warning: {status.need_reembedding} stored faces have no template of {embedder.model_id} and are "
              "not searched: run `faceapp db reembed`", file=sys.stderr)
    if status.search_notice:
        print(f"warning: {status.search_notice}", file=sys.stderr)
    if status.skipped:
        print(f"warning: {status.skipped} templates of {embedder.model_id} have another embedding size and are "
              "never compared (see `faceapp db check`)", file=sys.stderr)
    return gallery


def parse_when(text: str) -> datetime:
    """An ISO date/time (naive = UTC) or a duration back from now: 30m, 12h, 7d, 2w."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[match.group(2)]
        return datetime.now(timezone.utc) - timedelta(**{unit: int(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise FieldError(f"--since {text!r}: expected an ISO date/time (2025-01-31, 2025-01-31T08:00) or a "
                           "duration such as 30m, 12h, 7d") from error
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _threshold_override(args: argparse.Namespace, kind: str, gallery):  # noqa: ANN001, ANN202
    from dataclasses import replace

    value = getattr(args, "threshold", None)
    if value is None:
        return None
    if not -1.0 <= value <= 1.0:
        raise FieldError(f"--threshold must be a cosine similarity in [-1, 1], got {value}")
    return replace(gallery.thresholds(), **{kind: value}, source="command-line")


def _model_info(embedder) -> dict[str, Any]:  # noqa: ANN001
    return {"model_id": embedder.model_id, "trained": bool(embedder.trained)}


# -------------------------------------------------------------------------------------------------- enroll
def cmd_enroll(args: argparse.Namespace) -> int:
    from faceapp.capture.images import list_images
    from faceapp.services.enrollment import EnrollmentService
    from faceapp.storage import NewIdentity

    images = list_images(args.images)
    consent_at = parse_when(args.consent_at) if args.consent_at else (datetime.now(timezone.utc) if args.consent else None)
    target = args.name if args.add else NewIdentity(args.name, external_id=args.external_id, notes=args.notes,
                                                     consent_at=consent_at)
    embedder = load_embedder(args)
    with open_store(args) as store, open_pipeline(args) as pipeline:
        service = EnrollmentService(store, embedder, pipeline=pipeline, operator=args.operator,
                                    duplicate_check=not args.no_duplicate_check, allow_mixed=args.allow_different)
        show = print_progress if sys.stderr.isatty() and not args.json else None
        result = run_to_completion(service.enroll(target, images), show)
    data = {**result.as_dict(), "model": _model_info(embedder)}
    record = result.record
    lines = [f"{'enrolled' if record.created else 'added to'} {record.identity.name!r} (id {record.identity.id}): "
             f"{len(record.template_ids)} of {len(images)} images accepted, "
             f"{record.identity.template_count} templates in total"]
    lines += [f"  rejected {c.source}: {'; '.join(c.reasons)}" for c in result.rejected]
    lines += [f"warning: looks like existing identity {d.name!r} (id {d.identity_id}, score {d.score:.3f} >= "
              f"{d.threshold:.3f}): same person enrolled twice?" for d in result.duplicates]
    emit(args, data, "\n".join(lines))
    unreadable = [c for c in result.rejected if c.problem == ExitCode.INPUT_FILE]
    for check in unreadable:
        print(f"error: {'; '.join(check.reasons)}", file=sys.stderr)
    return int(ExitCode.INPUT_FILE) if unreadable else 0


# ---------------------------------------------------------------------------------------------- identities
def _identity_line(info) -> str:  # noqa: ANN001
    extra = f" [{visible(info.external_id)}]" if info.external_id else ""
    return f"{info.id:>6}  {visible(info.name)}{extra}  ({info.template_count} templates, {info.crop_count} crops)"


def cmd_identities_list(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        identities = store.identities.list(args.search, limit=args.limit)
    text = "\n".join(_identity_line(i) for i in identities) or "no identities"
    emit(args, [i.as_dict() for i in identities], text)
    return 0


def cmd_identities_show(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        info = store.identities.get(args.name)
        templates = store.templates.for_identity(info.id)
        crops = store.templates.crops(info.id) if args.crops_dir else []
        if args.crops_dir:
            _export_crops(store, args.crops_dir, info.id, crops)
    data = {**info.as_dict(), "template_list": [t.as_dict() for t in templates]}
    lines = [_identity_line(info).strip(), f"  created {info.created_at:%Y-%m-%d %H:%M} UTC, "
             f"consent {info.consent_at:%Y-%m-%d %H:%M} UTC" if info.consent_at else
             f"  created {info.created_at:%Y-%m-%d %H:%M} UTC, no consent recorded"]
    if info.notes:
        lines.append(f"  notes: {visible(info.notes)}")
    lines += [f"  template {t.id}: model {t.model_id}, dim {t.dim}, quality {t.quality if t.quality is not None else '-'}"
              f", source {visible(t.source)}, {t.created_at:%Y-%m-%d %H:%M}" for t in templates]
    if args.crops_dir:
        lines.append(f"  wrote {len(crops)} crops to {args.crops_dir}")
        print(f"{args.crops_dir} now holds face images in clear (files 0600): deleting this person "
              "later removes them there too; remove the folder when you no longer need it", file=sys.stderr)
    emit(args, data, "\n".join(lines))
    return 0


def _export_crops(store: Any, folder: Path, identity_id: int, crops: list[Any]) -> None:
    """Write clear crops 0600 into ``folder`` (made 0700 when new; a folder the user already has keeps its mode)
    and record the folder in the gallery, so that an erasure reaches them."""
    from faceapp.core.files import atomic_write
    from faceapp.storage.backups import register_copy

    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    register_copy(store.uow, folder, "crops")
    for crop in crops:
        atomic_write(folder / f"{identity_id}_{crop.id}.png", crop.png)


def cmd_identities_rename(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        info = store.identities.rename(args.name, args.new_name, operator=args.operator)
    emit(args, info.as_dict(), f"renamed to {info.name!r} (id {info.id})")
    return 0


def cmd_identities_delete(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        info = store.identities.get(args.name)
        if not args.yes:
            if not sys.stdin.isatty():
                raise FieldError(f"deleting {info.name!r} ({info.template_count} templates, {info.crop_count} "
                                   "crops) needs --yes when not run interactively")
            answer = input(f"Delete {info.name!r} with {info.template_count} templates and {info.crop_count} "
                           "crops? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted", file=sys.stderr)
                return int(ExitCode.CANCELLED)
        report = store.identities.delete(info.id, forget_audit=args.forget_audit, operator=args.operator)
    lines = [f"deleted {report.name!r}: {report.templates} templates, {report.crops} crops"]
    if report.backups_erased:
        lines.append(f"  also erased from {len(report.backups_erased)} backup(s)/crop folder(s) FaceApp made")
    emit(args, report.__dict__, "\n".join(lines))
    for path in report.backups_missing:
        print(f"warning: {path} (a copy FaceApp made) is no longer there: if it was moved, delete {report.name!r} "
              "from it yourself", file=sys.stderr)
    for failure in report.backups_failed:
        print(f"warning: could not erase from {failure}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------ verify/identify
def _audited_attempt(gallery, operation: str, args: argparse.Namespace, attempt, *,  # noqa: ANN001
                     identity: str | None = None):  # noqa: ANN202
    """Run ``attempt()``; a FaceAppError it raises (no face, unknown name, unreadable probe) is audited as a
    failed attempt of ``operation`` before it propagates."""
    from faceapp.core.errors import FaceAppError

    try:
        return attempt()
    except FaceAppError as error:
        gallery.record_failure(operation, error, identity=identity, details={"probe": str(args.image)})
        raise


def _queued_note(store) -> str | None:  # noqa: ANN001
    """A line for stderr when audit rows wait in the queue because another program holds the database."""
    waiting = store.audit.pending()
    if not waiting:
        return None
    return (f"note: the database is locked by another program: the audit row was queued durably in "
            f"{store.audit.queue_path} ({waiting} waiting) and is written at the next audit write")


def cmd_verify(args: argparse.Namespace) -> int:
    from faceapp.capture.images import read_image
    from faceapp.services.probe import embed_probe

    embedder = load_embedder(args)
    with open_store(args) as store, open_pipeline(args) as pipeline:
        gallery = open_gallery(args)

        def attempt():  # noqa: ANN202
            store.identities.get(args.name)                  # NotFoundError before detecting anything
            image = read_image(args.image)                   # decoded once: the probe and its liveness check
            probe = embed_probe(pipeline, embedder, image, source=str(args.image))
            override = _threshold_override(args, "verify", gallery)
            live = _probe_liveness(args, store, probe, image, identity=args.name)
            decision = gallery.verify(args.name, probe.embedding, policy=args.policy, thresholds=override,
                                      details={"probe": str(args.image), "faces_in_probe": probe.faces,
                                               **_liveness_details(live)}, not_live=_not_live(live))
            return probe, decision, (override or gallery.thresholds()).source, live

        probe, decision, source, live = _audited_attempt(gallery, "verify", args, attempt, identity=args.name)
        queued = _queued_note(store)
    data = {"identity_id": decision.identity_id, "name": decision.name, "score": decision.score,
            "threshold": decision.threshold, "match": decision.match, "policy": decision.policy,
            "thresholds_source": source, "faces_in_probe": probe.faces, "probe": str(args.image),
            "model": _model_info(embedder), "audit_queued": queued is not None}
    verdict = "MATCH" if decision.match else "NO MATCH"
    if live is not None and decision.match and not live.is_live:
        verdict = f"MATCH WITHHELD (liveness {live.state.value})"
    text = (f"{verdict}: {args.image} vs {decision.name!r} score {decision.score:.3f} "
            f"{'>=' if decision.match else '<'} {decision.threshold:.3f} (policy {decision.policy}, thresholds {source})")
    if probe.faces > 1:
        text += f"\nnote: {probe.faces} faces in the image; the largest was used"
    if live is not None:
        data["liveness"] = live.as_dict()
        data["accepted"] = decision.match and live.is_live
        text += f"\nliveness: {live.state.value.upper()}: {live.reason}"
    emit(args, data, text)
    if queued:
        print(queued, file=sys.stderr)
    if live is not None and not live.is_live:
        return int(live.exit_code)
    return int(ExitCode.NO_MATCH) if args.strict and not decision.match else 0


def cmd_identify(args: argparse.Namespace) -> int:
    from faceapp.capture.images import read_image
    from faceapp.services.probe import embed_probe

    if args.top_k < 1:
        raise FieldError(f"--top-k must be at least 1, got {args.top_k}")
    try:
        margin = check_ambiguity_margin(args.ambiguity_margin)
    except ValueError as error:
        raise FieldError(f"--ambiguity-margin: {error}") from None
    embedder = load_embedder(args)
    with open_store(args) as store, open_pipeline(args) as pipeline:
        gallery = open_gallery(args)

        def attempt():  # noqa: ANN202
            image = read_image(args.image)                   # decoded once: the probe and its liveness check
            probe = embed_probe(pipeline, embedder, image, source=str(args.image))
            override = _threshold_override(args, "identify", gallery)
            live = _probe_liveness(args, store, probe, image)
            decision = gallery.identify(probe.embedding, top_k=args.top_k, thresholds=override,
                                        ambiguity_margin=margin,
                                        details={"probe": str(args.image), "faces_in_probe": probe.faces,
                                                 **_liveness_details(live)}, not_live=_not_live(live))
            return probe, decision, (override or gallery.thresholds()).source, live

        probe, decision, source, live = _audited_attempt(gallery, "identify", args, attempt)
        queued = _queued_note(store)
    candidates = [{"rank": r, "identity_id": c.identity_id, "name": c.name, "score": c.score}
                  for r, c in enumerate(decision.candidates, 1)]
    best = decision.best
    data = {"identity_id": decision.identity_id, "name": None if decision.identity_id is None else best.name,
            "decision": decision.outcome, "unknown": decision.is_unknown, "ambiguous": decision.ambiguous,
            "ambiguity_margin": decision.ambiguity_margin, "threshold": decision.threshold,
            "thresholds_source": source,
            "candidates": candidates, "faces_in_probe": probe.faces, "probe": str(args.image),
            "model": _model_info(embedder), "audit_queued": queued is not None}
    if best is None:
        head = f"UNKNOWN: the gallery has no template of {embedder.model_id}"
    elif decision.ambiguous:
        second = decision.runner_up
        head = (f"AMBIGUOUS: {best.name!r} {best.score:.3f} and {second.name!r} {second.score:.3f} are within "
                f"{decision.ambiguity_margin:.3f} (>= {decision.threshold:.3f}, thresholds {source}): check the person")
    elif decision.is_unknown:
        head = f"UNKNOWN: best {best.name!r} {best.score:.3f} < {decision.threshold:.3f} (thresholds {source})"
    else:
        head = f"{visible(best.name)} (id {best.identity_id}): {best.score:.3f} >= {decision.threshold:.3f} (thresholds {source})"
    lines = [head] + [f"  {c['rank']:>2}. {visible(c['name']):<30} {c['score']:.3f}" for c in candidates]
    if probe.faces > 1:
        lines.append(f"note: {probe.faces} faces in the image; the largest was used")
    if live is not None:
        data["liveness"] = live.as_dict()
        data["accepted"] = decision.identity_id is not None and live.is_live
        lines.append(f"liveness: {live.state.value.upper()}: {live.reason}")
    emit(args, data, "\n".join(lines))
    if queued:
        print(queued, file=sys.stderr)
    if live is not None and not live.is_live:
        return int(live.exit_code)
    return int(ExitCode.NO_MATCH) if args.strict and decision.identity_id is None else 0


def _probe_liveness(args: argparse.Namespace, store, probe, image, identity: str | None = None):  # noqa: ANN001, ANN202
    """With ``--liveness``: the passive liveness decision of the probe's main face, recorded in the audit log
    (one owner: services.audit.liveness_entry); None without the option."""
    if not getattr(args, "liveness", False):
        return None
    from faceapp.liveness import LivenessChecker
    from faceapp.services.audit import liveness_entry
    from faceapp.services.gallery import default_operator

    checker = LivenessChecker("passive", pad_model_dir=getattr(args, "pad_model_dir", None))
    faces = [probe.aligned.face]                  # the face verify/identify uses (the largest when several)
    decision = checker.check_image(image, faces)
    store.audit.append(liveness_entry(decision, operator=getattr(args, "operator", None) or default_operator(),
                                      details={"probe": str(args.image), "for": args.command,
                                               "claimed": identity}), queue_when_locked=True)
    return decision


def _not_live(live) -> str | None:  # noqa: ANN001
    """The liveness state that withholds a MATCH or a name (None: not checked by option, or live)."""
    return None if live is None or live.is_live else live.state.value


def _liveness_details(live) -> dict[str, Any]:  # noqa: ANN001
    return {} if live is None else {"liveness": live.state.value}


# --------------------------------------------------------------------------------------------------- audit
def cmd_audit(args: argparse.Namespace) -> int:
    from faceapp.core.errors import DatabaseError

    with open_store(args) as store:
        try:
            store.audit.flush_queue()                # rows queued while the database was locked come first
        except DatabaseError:
            pass
        waiting = store.audit.pending()
        if waiting:
            print(f"note: {waiting} audit rows still wait in {store.audit.queue_path} (the database is locked); "
                  "they are not listed yet", file=sys.stderr)
        identity_id = store.identities.get(args.identity).id if args.identity else None
        events = store.audit.query(since=parse_when(args.since) if args.since else None, operation=args.operation,
                                   identity_id=identity_id, limit=args.limit, newest_first=args.limit is not None)
    if args.limit is not None:
        events.reverse()

    def line(e) -> str:  # noqa: ANN001
        parts = [f"{e.time:%Y-%m-%d %H:%M:%S}", f"{e.operation:<9}", visible(e.identity_name)]
        if e.score is not None:
            parts.append(f"score {e.score:.3f}" + (f" / {e.threshold:.3f}" if e.threshold is not None else ""))
        if e.decision:
            parts.append(visible(e.decision))
        parts.append(f"by {visible(e.operator)}")
        return "  ".join(parts)

    emit(args, [e.as_dict() for e in events], "\n".join(line(e) for e in events) or "no audit events")
    return 0


# ------------------------------------------------------------------------------------------------ register
def register(subparsers: argparse._SubParsersAction) -> None:
    """Add enroll, identities, verify, identify and audit."""
    p = subparsers.add_parser("enroll", help="enrol a person from several images",
                              description="Enrol NAME from images (files or folders): each image must show one "
                                          "face that passes the quality gate; rejected images are listed with the "
                                          "reason. Everything is saved in one transaction. Warns when the face "
                                          "already matches another identity.")
    p.add_argument("name", metavar="NAME", help="display name (unique)")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files or folders")
    p.add_argument("--add", action="store_true", help="add the images to the existing identity NAME")
    p.add_argument("--external-id", metavar="ID", help="an id from another system (unique)")
    p.add_argument("--notes", help="free text kept with the identity")
    p.add_argument("--consent", action="store_true", help="record that consent was given now")
    p.add_argument("--consent-at", metavar="WHEN", help="record consent given at this ISO date/time")
    p.add_argument("--no-duplicate-check", action="store_true", help="skip the check against other identities")
    p.add_argument("--allow-different", action="store_true",
                   help="enrol even when the images score under the verify threshold with each other (by default "
                        "such images are refused as different people, exit 14)")
    add_store_options(p)
    add_vision_options(p)
    add_embed_options(p)
    p.set_defaults(handler=cmd_enroll)

    p = subparsers.add_parser("identities", help="list, show, rename or delete identities",
                              description="Manage the enrolled identities. NAME is the exact name or #ID.")
    sub = p.add_subparsers(dest="identities_command", metavar="ACTION", required=True)
    q = sub.add_parser("list", help="identities with template counts")
    q.add_argument("--search", metavar="TEXT", help="only names or external ids containing TEXT")
    q.add_argument("--limit", type=int, metavar="N", help="at most N identities")
    add_store_options(q, operator=False)
    q.set_defaults(handler=cmd_identities_list)
    q = sub.add_parser("show", help="one identity with its templates")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--crops-dir", type=Path, metavar="DIR", help="also write its aligned crops (PNG) into DIR")
    add_store_options(q, operator=False)
    q.set_defaults(handler=cmd_identities_show)
    q = sub.add_parser("rename", help="give an identity another name")
    q.add_argument("name", metavar="NAME")
    q.add_argument("new_name", metavar="NEW_NAME")
    add_store_options(q)
    q.set_defaults(handler=cmd_identities_rename)
    q = sub.add_parser("delete", help="delete an identity with its templates and crops")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    q.add_argument("--forget-audit", action="store_true", help="also blank the name in past audit events")
    add_store_options(q)
    q.set_defaults(handler=cmd_identities_delete)

    p = subparsers.add_parser("verify", help="1:1: is the person in IMAGE the claimed NAME?",
                              description="Compare the main face of IMAGE with NAME's templates (policy max, mean "
                                          "or centroid) against the verify threshold of the active model. Exit 0 "
                                          "either way unless --strict (then 12 on NO MATCH). Audited.")
    p.add_argument("name", metavar="NAME", help="claimed identity (name or #ID)")
    p.add_argument("image", type=Path, metavar="IMAGE")
    p.add_argument("--policy", choices=VERIFY_POLICIES, default="max", help="how templates combine (default max)")
    p.add_argument("--threshold", type=float, help="use this verify threshold instead of the stored one")
    p.add_argument("--strict", action="store_true", help="exit 12 when the answer is NO MATCH")
    add_store_options(p)
    add_vision_options(p)
    add_embed_options(p)
    add_liveness_flag(p)
    p.set_defaults(handler=cmd_verify)

    p = subparsers.add_parser("identify", help="1:N: who is in IMAGE? (or unknown)",
                              description="Rank the gallery's identities by their best template against the main "
                                          "face of IMAGE; UNKNOWN when the best score is under the identify "
                                          "threshold, AMBIGUOUS when the top two are within --ambiguity-margin. "
                                          "Exit 0 either way unless --strict (then 12 on unknown or ambiguous). "
                                          "Audited.")
    p.add_argument("image", type=Path, metavar="IMAGE")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="candidates to list (default 5)")
    p.add_argument("--threshold", type=float, help="use this identify threshold instead of the stored one")
    p.add_argument("--ambiguity-margin", type=float, default=DEFAULT_AMBIGUITY_MARGIN, metavar="M",
                   help="name nobody when the top two identities score within M of each other (cosine; default "
                        f"{DEFAULT_AMBIGUITY_MARGIN}, as the Live page; 0 turns it off)")
    p.add_argument("--strict", action="store_true", help="exit 12 when the answer is unknown or ambiguous")
    add_store_options(p)
    add_vision_options(p)
    add_embed_options(p)
    add_liveness_flag(p)
    p.set_defaults(handler=cmd_identify)

    p = subparsers.add_parser("audit", help="the audit log of decisions and gallery changes",
                              description="Audit events, oldest first. --since takes an ISO date/time (UTC unless "
                                          "it says otherwise) or a duration such as 30m, 12h, 7d.")
    p.add_argument("--since", metavar="WHEN", help="events at or after WHEN")
    p.add_argument("--operation", choices=OPERATIONS, help="only events of this operation")
    p.add_argument("--identity", metavar="NAME", help="events of one identity (name or #ID)")
    p.add_argument("--limit", type=int, metavar="N", help="only the N most recent events")
    add_store_options(p, operator=False)
    p.set_defaults(handler=cmd_audit)
