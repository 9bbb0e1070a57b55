"""Store maintenance commands: ``faceapp db upgrade|check|backup|reembed``, ``faceapp thresholds show|set``
and ``faceapp gallery export|import``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from faceapp.cli.commands.identities import add_store_options, open_store
from faceapp.cli.commands.pipeline import add_embed_options, load_embedder, workstation
from faceapp.cli.output import emit, print_progress
from faceapp.core.errors import ExitCode
from faceapp.core.progress import run_to_completion

NEW_PASSPHRASE_ENV = "FACEAPP_NEW_GALLERY_KEY"   # db rotate-key --to passphrase without a prompt


# ------------------------------------------------------------------------------------------------------ db
def cmd_db_upgrade(args: argparse.Namespace) -> int:
    with workstation(args, schema="ignore").store as store:
        before = store.upgrade()
        after = store.schema_status()
    data = {"database": store.where, "from": before.current, "to": after.current, "upgraded": not before.up_to_date}
    text = (f"database {store.where} is already at schema {after.current}" if before.up_to_date else
            f"upgraded database {store.where} from schema {before.current or 'none (new)'} to {after.current}")
    emit(args, data, text)
    return 0


def _existing(url: str | None) -> str | None:
    """``url`` after checking that a SQLite file it names exists (checking must not create one)."""
    from faceapp.core.errors import DatabaseError
    from faceapp.storage.engine import parse_url, resolve_url, sqlite_file

    path = sqlite_file(parse_url(resolve_url(url)))
    if path is not None and not path.exists():
        raise DatabaseError(f"database file {path} does not exist", path=str(path))
    return url


def cmd_db_check(args: argparse.Namespace) -> int:
    from faceapp.storage.maintenance import check

    _existing(args.db)
    with workstation(args, schema="ignore").store as store:
        report = check(store)
    lines = [f"database {report.database}: schema {report.schema_revision or 'none'} "
             f"(this FaceApp: {report.head_revision}), SQLite integrity {report.integrity}",
             f"{report.identities} identities, {report.crops} crops, templates by model: "
             + (", ".join(f"{m} {n}" for m, n in report.templates_by_model.items()) or "none")]
    enc = report.encryption
    if enc:
        lines.append(f"encryption: key from {enc['key_source']}, data key version {enc['key_version']}; crops "
                     f"{enc['crops_sealed']} sealed / {enc['crops_clear']} clear / {enc['crops_stale_key']} old key, "
                     f"templates {enc['templates_sealed']} sealed / {enc['templates_clear']} clear / "
                     f"{enc['templates_stale_key']} old key" if enc["encrypted"] else
                     f"encryption: off (gallery kept in clear: {enc['crops_clear']} crops, {enc['templates_clear']} "
                     "templates; `faceapp db encrypt` seals them)")
    lines += [f"problem: {p}" for p in report.problems] or ["no problems found"]
    emit(args, report.as_dict(), "\n".join(lines))
    return 0 if report.ok else int(ExitCode.DATABASE)


def cmd_db_backup(args: argparse.Namespace) -> int:
    from faceapp.storage.maintenance import backup

    _existing(args.db)
    with open_store(args) as store:
        target = backup(store, args.path, overwrite=args.overwrite)
    emit(args, {"database": store.where, "backup": str(target), "bytes": target.stat().st_size},
         f"backed up {store.where} to {target} ({target.stat().st_size:,} bytes)")
    return 0


def cmd_db_reembed(args: argparse.Namespace) -> int:
    from faceapp.core.progress import CancelToken
    from faceapp.services.reembed import reembed_gallery

    embedder = load_embedder(args)
    cancel = CancelToken()
    with open_store(args) as store:
        job = reembed_gallery(store, embedder, batch_size=args.batch_size, cancel=cancel, operator=args.operator)
        try:
            report = run_to_completion(job, None if args.json else print_progress)
        except KeyboardInterrupt:           # stop after the current batch; done batches stay committed
            cancel.cancel()
            report = run_to_completion(job)
    lines = [f"{report.embedded} crops embedded with {report.model_id}; {report.remaining} left"
             + (" (cancelled: run again to resume)" if report.cancelled else "")]
    if report.without_crops:
        from faceapp.services.activation import name_list

        names = name_list([n for _, n in report.without_crops], limit=10)
        lines.append(f"warning: {len(report.without_crops)} identities have no stored crop and cannot be re-embedded "
                     f"(enrol them again): {names}")
    emit(args, report.as_dict(), "\n".join(lines))
    return int(ExitCode.CANCELLED) if report.cancelled else 0


def cmd_db_encrypt(args: argparse.Namespace) -> int:
    from faceapp.storage.maintenance import encrypt

    _existing(args.db)
    with open_store(args) as store:
        summary = encrypt(store)
    if summary is None:
        emit(args, {"database": store.where, "encrypted": True, "changed": False},
             f"database {store.where} is already encrypted (see `faceapp db rotate-key`)")
        return 0
    emit(args, {"database": store.where, "changed": True, **summary},
         f"encrypted {summary['crops']} crops and {summary['templates']} templates of {store.where} "
         f"(key from {summary['key_source']})")
    return 0


def cmd_db_rotate_key(args: argparse.Namespace) -> int:
    import os

    from faceapp.cli.commands.pipeline import ask_secret, key_options
    from faceapp.storage.maintenance import rotate_key

    _existing(args.db)
    new_keys = None
    if args.to is not None or os.environ.get(NEW_PASSPHRASE_ENV):
        target = args.to or "passphrase"
        passphrase = os.environ.get(NEW_PASSPHRASE_ENV) or None
        if target == "passphrase" and passphrase is None:
            first = ask_secret("new passphrase: ")
            if first and first != ask_secret("new passphrase again: "):
                from faceapp.core.errors import GalleryKeyError

                raise GalleryKeyError("the two new passphrases differ: nothing changed")
            passphrase = first or None
        new_keys = key_options(prefer=target, passphrase=passphrase if target == "passphrase" else None)
    with open_store(args) as store:
        summary = rotate_key(store, full=args.full, new_keys=new_keys,
                             unlinkable=None if args.unlinkable is None else args.unlinkable == "on")
    what = (f"re-encrypted {summary['crops']} crops and {summary['templates']} templates under data key version "
            f"{summary['key_version']}" if args.full else "re-wrapped the data key")
    emit(args, {"database": store.where, **summary},
         f"{what} of {store.where}; key now from {summary['key_source']} (the old {summary['from_source']} key "
         "was destroyed: copies made before, e.g. backups, no longer open with it)"
         + ("; templates are unlinkable" if summary.get("unlinkable") else ""))
    return 0


# ---------------------------------------------------------------------------------------------- thresholds
def cmd_thresholds_show(args: argparse.Namespace) -> int:
    embedder = load_embedder(args)
    with open_store(args):
        thresholds = workstation(args).thresholds()
    data = {"model_id": embedder.model_id, "trained": embedder.trained, **thresholds.as_dict()}
    far = f", target FAR {thresholds.target_far:g}" if thresholds.target_far else ""
    when = f", calibrated {thresholds.calibrated_at:%Y-%m-%d}" if thresholds.calibrated_at else ""
    emit(args, data, f"{embedder.model_id}: verify {thresholds.verify:.3f}, identify {thresholds.identify:.3f} "
                     f"(source {thresholds.source}{far}{when})")
    return 0


def cmd_thresholds_set(args: argparse.Namespace) -> int:
    embedder = load_embedder(args)
    with open_store(args) as store:
        current = store.thresholds.get(embedder.model_id)
        verify = args.verify if args.verify is not None else (current.verify if current else None)
        identify = args.identify if args.identify is not None else (current.identify if current else verify)
        if verify is None:
            from faceapp.storage import FieldError

            raise FieldError("--verify is required when the model has no stored thresholds yet")
        record = workstation(args).save_thresholds(verify, identify, target_far=args.target_far, source=args.source)
    emit(args, {"model_id": record.model_id, "verify": record.verify, "identify": record.identify,
                "target_far": record.target_far, "source": record.source, "calibrated_at": record.calibrated_at},
         f"{record.model_id}: verify {record.verify:.3f}, identify {record.identify:.3f} saved (source {record.source})")
    return 0


# ------------------------------------------------------------------------------------------------- gallery
def _export_passphrase(*, new: bool) -> str | None:
    """The export passphrase: $FACEAPP_EXPORT_PASSPHRASE, else asked at the terminal (twice for a new one)."""
    import os

    from faceapp.cli.commands.pipeline import ask_secret
    from faceapp.core.errors import GalleryKeyError
    from faceapp.storage.sealed_archive import ENV_EXPORT_PASSPHRASE

    passphrase = os.environ.get(ENV_EXPORT_PASSPHRASE) or ask_secret("export passphrase: ") or None
    if new and passphrase is None:
        raise GalleryKeyError(f"an export is encrypted with a passphrase: set {ENV_EXPORT_PASSPHRASE} or run in a "
                              "terminal to be asked (or pass --plaintext to write faces in clear)")
    if new and not os.environ.get(ENV_EXPORT_PASSPHRASE) and ask_secret("export passphrase again: ") != passphrase:
        raise GalleryKeyError("the two passphrases differ: nothing exported")
    return passphrase


def cmd_gallery_export(args: argparse.Namespace) -> int:
    from faceapp.storage.transfer import export_gallery

    passphrase = None if args.plaintext else _export_passphrase(new=True)
    with open_store(args) as store:
        summary = export_gallery(store, args.path, overwrite=args.overwrite, include_crops=not args.no_crops,
                                 model_ids=args.model_id or None, passphrase=passphrase)
    if args.plaintext:
        print(f"warning: {summary['path']} holds faces and templates in clear (--plaintext)", file=sys.stderr)
    emit(args, {**summary, "encrypted": passphrase is not None},
         f"exported {summary['identities']} identities, {summary['crops']} crops and {summary['templates']} "
         f"templates to {summary['path']}" + (" (encrypted)" if passphrase else ""))
    return 0


def _active_model(folder: Path | None) -> list:  # noqa: ANN202 - [ModelSpec]
    """The active embedding model's id and dimension, read from its folder without loading the network
    (none when there is no trained model folder: then only the store's registered models are checked)."""
    from faceapp.core.errors import FaceAppError
    from faceapp.embedding.embedder import default_model_dir
    from faceapp.embedding.model_folder import model_id_of, read_config, weights_sha256
    from faceapp.storage import ModelSpec

    folder = folder if folder is not None else default_model_dir()
    if folder is None:
        return []
    try:
        config = read_config(folder)
        return [ModelSpec(model_id_of(config.name, weights_sha256(folder)), config.name, int(config.embedding_dim))]
    except (FaceAppError, OSError):
        return []


def cmd_gallery_import(args: argparse.Namespace) -> int:
    from faceapp.storage.sealed_archive import is_sealed
    from faceapp.storage.transfer import import_gallery

    passphrase = _export_passphrase(new=False) if is_sealed(args.path) else None
    with open_store(args) as store:
        summary = import_gallery(store, args.path, on_conflict=args.on_conflict, operator=args.operator,
                                 passphrase=passphrase, known_models=_active_model(args.model))
    text = (f"imported {summary['identities']} identities ({summary['merged']} merged, {summary['skipped']} skipped), "
            f"{summary['crops']} crops and {summary['templates']} templates from {args.path}")
    emit(args, summary, text)
    return 0


# ------------------------------------------------------------------------------------------------ register
def register(subparsers: argparse._SubParsersAction) -> None:
    """Add db, thresholds and gallery."""
    p = subparsers.add_parser("db", help="database upgrade, check, backup and re-embedding",
                              description="Maintain the identity store (see docs/identity_store.md).")
    sub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    q = sub.add_parser("upgrade", help="upgrade the schema to this FaceApp's version (also done on open)")
    add_store_options(q, operator=False)
    q.set_defaults(handler=cmd_db_upgrade)
    q = sub.add_parser("check", help="schema version, SQLite integrity, orphans, dimension mismatches (exit 6 "
                                     "when a problem is found)")
    add_store_options(q, operator=False)
    q.set_defaults(handler=cmd_db_check)
    q = sub.add_parser("backup", help="copy a SQLite store with the online backup API (safe while in use)")
    q.add_argument("path", type=Path, metavar="PATH", help="backup file to write")
    q.add_argument("--overwrite", action="store_true", help="replace PATH if it exists")
    add_store_options(q, operator=False)
    q.set_defaults(handler=cmd_db_backup)
    q = sub.add_parser("reembed", help="embed the stored face crops with the active model (resumable; Ctrl-C "
                                       "stops after the current batch)")
    add_store_options(q)
    add_embed_options(q)
    q.set_defaults(handler=cmd_db_reembed)
    q = sub.add_parser("encrypt", help="seal the crops and templates of a gallery kept in clear (one transaction)")
    add_store_options(q, operator=False)
    q.set_defaults(handler=cmd_db_encrypt)
    q = sub.add_parser("rotate-key", help="renew the gallery key: re-wrap the data key under a new key-encryption "
                                          "key (fast), or re-encrypt every crop and template (--full)",
                       description="The old key-encryption key is destroyed after the commit. --full also revokes "
                                   "the data key (and renews an unlinkable gallery's template transform).")
    q.add_argument("--full", action="store_true", help="new data key: re-encrypt every crop and template")
    q.add_argument("--unlinkable", choices=("on", "off"),
                   help="with --full: store templates through a secret per-gallery orthogonal transform (on), so "
                        "they cannot be matched against another gallery's, or stop doing so (off); scores inside "
                        "the gallery do not change. New galleries: FACEAPP_GALLERY_UNLINKABLE=on")
    q.add_argument("--to", choices=("keyring", "keyfile", "passphrase"),
                   help="where the new key-encryption key lives (default: as now; a new passphrase comes from "
                        f"${NEW_PASSPHRASE_ENV} or is asked twice)")
    add_store_options(q, operator=False)
    q.set_defaults(handler=cmd_db_rotate_key)

    p = subparsers.add_parser("thresholds", help="show or set the verify/identify thresholds of the active model",
                              description="Thresholds come from the store, else the model card, else defaults; "
                                          "the source is always shown.")
    sub = p.add_subparsers(dest="thresholds_command", metavar="ACTION", required=True)
    q = sub.add_parser("show", help="the thresholds in force and where they come from")
    add_store_options(q, operator=False)
    add_embed_options(q)
    q.set_defaults(handler=cmd_thresholds_show)
    q = sub.add_parser("set", help="store thresholds for the active model")
    q.add_argument("--verify", type=float, help="verify threshold (cosine similarity)")
    q.add_argument("--identify", type=float, help="identify threshold (default: the verify threshold)")
    q.add_argument("--target-far", type=float, metavar="FAR", help="the false-accept rate they were chosen for")
    q.add_argument("--source", default="manual", help="where the values come from (default manual)")
    add_store_options(q)
    add_embed_options(q)
    q.set_defaults(handler=cmd_thresholds_set)

    p = subparsers.add_parser("gallery", help="export or import the gallery (zip: JSON + PNG crops + npy "
                                              "embeddings)",
                              description="Move a gallery between workstations; format in docs/identity_store.md.")
    sub = p.add_subparsers(dest="gallery_command", metavar="ACTION", required=True)
    q = sub.add_parser("export", help="write the gallery to a zip file")
    q.add_argument("path", type=Path, metavar="FILE.zip")
    q.add_argument("--overwrite", action="store_true", help="replace FILE.zip if it exists")
    q.add_argument("--no-crops", action="store_true", help="leave the face crops out (cannot be re-embedded then)")
    q.add_argument("--model-id", action="append", metavar="ID", help="only templates of this model (repeatable)")
    q.add_argument("--plaintext", action="store_true",
                   help="write the zip in clear (default: encrypted with a passphrase from $FACEAPP_EXPORT_PASSPHRASE "
                        "or asked at the terminal)")
    add_store_options(q, operator=False)
    q.set_defaults(handler=cmd_gallery_export)
    q = sub.add_parser("import", help="add a gallery zip to this store (one transaction)")
    q.add_argument("path", type=Path, metavar="FILE.zip")
    q.add_argument("--on-conflict", choices=("fail", "skip", "merge"), default="fail",
                   help="when a name already exists: fail (default, nothing imported), skip that identity, or "
                        "merge its crops and templates into the existing one")
    q.add_argument("--model", type=Path, metavar="DIR",
                   help="the active embedding model (default $FACEAPP_EMBED_MODEL, else models/default): templates "
                        "under its id must have its embedding size")
    add_store_options(q)
    q.set_defaults(handler=cmd_gallery_import)
