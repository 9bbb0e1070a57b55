"""Pipeline commands: ``faceapp detect``, ``align``, ``embed``, ``compare`` and ``assets``.

Exit codes for several inputs (detect, align): every file is reported; the exit status is INPUT_FILE if
any file could not be read, else NO_FACE if any image had no face, else OK. ``embed`` goes on past every
bad file and reports each on stderr; it exits INPUT_FILE if any file could not be read, NO_FACE if no
image was embedded, else OK (images without a face are listed, not an error). ``enroll`` follows the same
rule for unreadable files (see faceapp.cli.commands.identities).
Coordinates are pixels of the image file (also when a huge JPEG was decoded reduced).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from faceapp.cli.output import emit, print_progress
from faceapp.core.errors import ExitCode, FaceAppError, InputFileError
from faceapp.core.types import Face

DETECTOR_CHOICES = ("auto", "landmarker", "blazeface", "haar")
MULTI_INPUT_RULE = ("Every file is reported; the exit status is 3 (input file) if any file could not be read, "
                    "else 4 (no face) if any image had no face, else 0. Coordinates are pixels of the file.")


# ---------------------------------------------------------------------------------------------- options
def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers >= ``minimum`` (a usage error otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def add_vision_options(parser: argparse.ArgumentParser) -> None:
    """--mediapipe-dir/--model-dir, --detector, --max-side, --min-confidence, --no-download."""
    group = parser.add_argument_group("face detection")
    group.add_argument("--mediapipe-dir", "--model-dir", dest="mediapipe_dir", type=Path, metavar="DIR",
                       help="folder holding face_landmarker.task (searched before $FACEAPP_MODEL_DIR)")
    group.add_argument("--detector", choices=DETECTOR_CHOICES, default="auto",
                       help="auto = MediaPipe landmarker with visible fallbacks (default)")
    group.add_argument("--max-side", type=int_at_least(64), default=1280, metavar="PX",
                       help="downscale larger images to this side for detection (default 1280)")
    group.add_argument("--min-confidence", type=float, default=0.3, help="face detection confidence (default 0.3)")
    group.add_argument("--no-download", action="store_true", help="never download missing MediaPipe models")


def add_embed_options(parser: argparse.ArgumentParser) -> None:
    """--model, --device, --flip-tta, --batch-size."""
    group = parser.add_argument_group("embedding")
    group.add_argument("--model", type=Path, metavar="DIR",
                       help="embedding model folder (default $FACEAPP_EMBED_MODEL, else models/default)")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    group.add_argument("--flip-tta", action="store_true", help="add the embedding of the mirrored crop")
    group.add_argument("--batch-size", type=int_at_least(1), default=64, help="crops per forward pass (default 64)")


def download_reporter(label: str, *, quiet: bool = False) -> Callable[[int, int | None], None]:
    """A download progress callback printing a percentage line on stderr (nothing when ``quiet``)."""

    def report(done: int, total: int | None) -> None:
        if quiet:
            return
        if total:
            end = "\n" if done >= total else ""
            print(f"\rdownloading {label}: {done * 100 // total}% of {total / 1e6:.1f} MB", end=end,
                  file=sys.stderr, flush=True)
        elif done == 0:
            print(f"downloading {label} ...", file=sys.stderr, flush=True)

    return report


def ask_secret(prompt: str) -> str:
    """A passphrase typed at the terminal (not echoed); empty when stdin is not a terminal (scripts, tests)."""
    import getpass

    return getpass.getpass(prompt) if sys.stdin.isatty() else ""


def key_options(**overrides: Any):  # noqa: ANN201 - faceapp.storage.keys.KeyOptions
    """Gallery key options from the environment; a passphrase gallery asks at the terminal when needed."""
    from faceapp.storage.keys import KeyOptions

    return KeyOptions.from_environment(prompt=ask_secret, **overrides)


def workstation(args: argparse.Namespace, **changes: Any):  # noqa: ANN201 - faceapp.app.Workstation
    """The command's Workstation (store, embedder, gallery, pipeline factory), built once per command from its
    options and the environment by ``faceapp.app.open_workstation``, as the GUI and the bench build theirs."""
    from faceapp.app import WorkstationOptions, open_workstation

    cached = getattr(args, "_workstation", None)
    if cached is not None and not changes:
        return cached
    options = WorkstationOptions(
        db=getattr(args, "db", None), model=getattr(args, "model", None),
        mediapipe_dir=getattr(args, "mediapipe_dir", None), device=getattr(args, "device", "auto"),
        flip_tta=bool(getattr(args, "flip_tta", False)), operator=getattr(args, "operator", None),
        index=getattr(args, "index", None),
        detector=getattr(args, "detector", "auto"), min_confidence=getattr(args, "min_confidence", 0.3),
        max_side=getattr(args, "max_side", 1280), allow_download=not getattr(args, "no_download", False),
        download_progress=download_reporter("MediaPipe model", quiet=getattr(args, "json", False)),
        keys=key_options(), **changes)
    ws = open_workstation(options)
    if not changes:
        args._workstation = ws
    return ws


def open_pipeline(args: argparse.Namespace, mode: str = "image"):  # noqa: ANN201 - FacePipeline
    """A FacePipeline from the workstation's factory; warns on stderr when a fallback is active."""
    pipe = workstation(args).create_pipeline(mode)
    if pipe.fallback_active and args.detector == "auto":
        print(f"warning: MediaPipe face landmarker unavailable, using the {pipe.detector.value} fallback "
              f"(less accurate alignment): {pipe.fallback_reason}", file=sys.stderr)
    return pipe


def load_embedder(args: argparse.Namespace):  # noqa: ANN201 - Embedder
    """The workstation's Embedder; warns on stderr when it is the untrained fallback."""
    embedder = workstation(args).embedder
    if not embedder.trained:
        print(f"warning: {embedder.model_id} is an UNTRAINED network: similarities are meaningless "
              "(train one with `faceapp train` or pass --model)", file=sys.stderr)
    return embedder


def _input_files(paths: list[Path]) -> list[Path]:
    from faceapp.capture.images import list_images

    files = list_images(paths)
    if not files:
        raise InputFileError("no image files found in " + ", ".join(str(p) for p in paths))
    return files


# ---------------------------------------------------------------------------------------------- records
def face_record(face: Face, scale: float = 1.0, *, landmarks: bool = False, blendshapes: bool = False) -> dict[str, Any]:
    """JSON-ready description of a face in file pixels (``scale`` = decoded size / file size)."""
    inv = 1.0 / scale
    q = face.quality
    record: dict[str, Any] = {
        "box": [round(v * inv, 2) for v in face.box],
        "score": round(float(face.score), 4),
        "detector": face.detector.value,
        "five_points": np.round(face.five_points * inv, 2).tolist(),
        "pose": None if face.pose is None else dict(zip(("yaw", "pitch", "roll"), (round(v, 2) for v in face.pose))),
        "quality": None if q is None else {
            "face_size": round(q.face_size * inv, 2), "interocular": round(q.interocular * inv, 2),
            "sharpness": round(q.sharpness, 2), "brightness": round(q.brightness, 2)},
    }
    if landmarks and face.landmarks is not None:
        record["landmarks"] = np.round(face.landmarks * np.array([inv, inv, inv], np.float32), 2).tolist()
    if blendshapes and face.blendshapes:
        record["blendshapes"] = {k: round(v, 4) for k, v in face.blendshapes.items()}
    return record


def _face_line(i: int, rec: dict[str, Any]) -> str:
    x, y, w, h = rec["box"]
    parts = [f"  #{i + 1} box=({x:.0f},{y:.0f},{w:.0f}x{h:.0f})", f"detector={rec['detector']}"]
    if rec["pose"]:
        p = rec["pose"]
        parts.append(f"yaw={p['yaw']:+.0f} pitch={p['pitch']:+.0f} roll={p['roll']:+.0f}")
    if rec["quality"]:
        q = rec["quality"]
        parts.append(f"eyes={q['interocular']:.0f}px sharp={q['sharpness']:.0f} bright={q['brightness']:.0f}")
    return " ".join(parts)


def _n_faces(result: dict[str, Any]) -> int:
    faces = result["faces"]
    return faces if isinstance(faces, int) else len(faces)


def _exit_status(results: list[dict[str, Any]]) -> int:
    """INPUT_FILE if any file failed, else NO_FACE if any had no face, else OK; prints the summary line."""
    errors = [r for r in results if r.get("error")]
    empty = [r for r in results if not r.get("error") and not _n_faces(r)]
    for r in errors:
        print(f"error: {r['error']}", file=sys.stderr)
    if empty:
        names = ", ".join(r["path"] for r in empty[:5]) + (" ..." if len(empty) > 5 else "")
        print(f"error: no face found in {len(empty)} of {len(results)} image(s): {names}", file=sys.stderr)
    if errors:
        return int(ExitCode.INPUT_FILE)
    return int(ExitCode.NO_FACE) if empty else int(ExitCode.OK)


# ---------------------------------------------------------------------------------------------- detect
def cmd_detect(args: argparse.Namespace) -> int:
    """Report every face of every image."""
    from faceapp.capture.images import decode_image

    files = _input_files(args.images)
    results: list[dict[str, Any]] = []
    with open_pipeline(args) as pipe:
        pipe.crowd = args.crowd
        for path in files:
            entry: dict[str, Any] = {"path": str(path), "faces": []}
            try:
                decoded = decode_image(path)
            except FaceAppError as error:
                entry["error"] = str(error)
                results.append(entry)
                continue
            entry["width"], entry["height"] = decoded.original_size
            if decoded.scale != 1.0:
                entry["decoded_scale"] = round(decoded.scale, 6)
            faces = pipe.detect(decoded.image)
            entry["faces"] = [face_record(f, decoded.scale, landmarks=args.landmarks, blendshapes=args.blendshapes)
                              for f in faces]
            if pipe.capped(faces):
                entry["note"] = (f"{len(faces)} faces: the landmarker reports at most {pipe.num_faces} faces per "
                                 "look (the whole image, or each tile of the second look for small faces), so "
                                 "there may be more (--crowd finds every face)")
            results.append(entry)
        detector, fallback = pipe.detector.value, pipe.fallback_active
    lines = []
    for r in results:
        if r.get("error"):
            continue
        n = len(r["faces"])
        lines.append(f"{r['path']}: {n} face{'s' if n != 1 else ''}" if n else f"{r['path']}: no face")
        lines.extend(_face_line(i, rec) for i, rec in enumerate(r["faces"]))
        if r.get("note"):
            lines.append(f"  note: {r['note']}")
    if fallback:
        lines.append(f"(fallback detector: {detector})")
    emit(args, {"detector": detector, "fallback": fallback, "images": results}, "\n".join(lines))
    return _exit_status(results)


# ---------------------------------------------------------------------------------------------- align
def cmd_align(args: argparse.Namespace) -> int:
    """Write the aligned crop of the main face (or of every face) of each image."""
    from faceapp.capture.images import read_image
    from faceapp.services.embed_files import common_root, relative_key
    from faceapp.vision.pipeline import primary_face_index

    files = _input_files(args.images)
    root = common_root(list(args.images))
    out_dir: Path = args.output
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputFileError(f"{out_dir}: cannot create output folder ({error.strerror or error})", path=str(out_dir)) from error
    results: list[dict[str, Any]] = []
    written = 0
    with open_pipeline(args) as pipe:
        pipe.crop_size = args.size
        for path in files:
            entry: dict[str, Any] = {"path": str(path), "faces": 0, "outputs": []}
            try:
                image = read_image(path)
            except FaceAppError as error:
                entry["error"] = str(error)
                results.append(entry)
                continue
            aligned = pipe.process(image)
            entry["faces"] = len(aligned)
            main = primary_face_index([a.face for a in aligned], image.shape)
            chosen = list(range(len(aligned))) if args.all_faces else ([main] if main is not None else [])
            stem = Path(relative_key(path, root)).with_suffix("")
            for rank, index in enumerate(chosen):
                suffix = f"_{rank + 1}" if args.all_faces else ""
                target = out_dir / f"{stem}{suffix}.{args.format}"
                target.parent.mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(target), aligned[index].image):
                    raise InputFileError(f"{target}: cannot write the crop", path=str(target))
                entry["outputs"].append(str(target))
                written += 1
            if len(aligned) > 1 and not args.all_faces:
                entry["note"] = f"{len(aligned)} faces: wrote the largest (use --all-faces for every face)"
            results.append(entry)
        fallback = pipe.fallback_active
    lines = [f"{r['path']} -> {', '.join(r['outputs'])}" + (f"  ({r['note']})" if r.get("note") else "")
             for r in results if r["outputs"]]
    lines.append(f"{written} crop(s) of {args.size}x{args.size} written to {out_dir}")
    emit(args, {"output": str(out_dir), "size": args.size, "written": written, "fallback": fallback,
                "images": results}, "\n".join(lines))
    return _exit_status(results)


# ---------------------------------------------------------------------------------------------- embed
def cmd_embed(args: argparse.Namespace) -> int:
    """Embed the main face of every image into an .npz file."""
    from faceapp.core.progress import run_to_completion
    from faceapp.services.embed_files import common_root, embed_files

    files = _input_files(args.paths)
    root = args.root.resolve() if args.root else common_root(list(args.paths))
    output: Path = args.output
    if output.suffix != ".npz":
        output = output.with_suffix(output.suffix + ".npz") if output.suffix else output.with_suffix(".npz")
    embedder = load_embedder(args)
    quiet = args.json or args.quiet
    with open_pipeline(args) as pipe:
        last = [0]

        def progress(event: Any) -> None:
            if not quiet and event.total and (event.done - last[0] >= 100 or event.done == event.total):
                last[0] = event.done
                print_progress(event)

        result = run_to_completion(embed_files(files, root, pipe, embedder, batch_size=args.batch_size), progress)
        fallback = pipe.fallback_active
    failed_keys = np.array([k for k, _ in result.failed], dtype=str)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        np.savez(output, keys=np.array(result.keys, dtype=str), emb=result.embeddings, failed=failed_keys,
                 model_id=np.array(result.model_id))
    except OSError as error:
        raise InputFileError(f"{output}: cannot write ({error.strerror or error})", path=str(output)) from error
    summary = {"output": str(output), "root": str(root), "images": len(files), **result.summary(),
               "trained": bool(getattr(embedder, "trained", False)), "fallback": fallback}
    text = [f"embedded {len(result.keys)} of {len(files)} image(s) with {result.model_id} "
            f"(dim {summary['dim']}) -> {output}"]
    if result.failed:
        text.append(f"not embedded: {len(result.failed)} (reasons on stderr and in the .npz 'failed' array)")
    if result.several_faces:
        text.append(f"{len(result.several_faces)} image(s) had several faces: the largest was used")
    emit(args, summary, "\n".join(text))
    for key, reason in result.failed[:50]:
        print(f"error: {reason}" if key in reason else f"error: {key}: {reason}", file=sys.stderr)
    if len(result.failed) > 50:
        print(f"error: ... and {len(result.failed) - 50} more (all listed in the .npz 'failed' array)", file=sys.stderr)
    if result.unreadable:
        print(f"error: {len(result.unreadable)} of {len(files)} file(s) could not be read", file=sys.stderr)
        return int(ExitCode.INPUT_FILE)
    if not result.keys:
        print(f"error: no face found in any of the {len(files)} image(s)", file=sys.stderr)
        return int(ExitCode.NO_FACE)
    return int(ExitCode.OK)


# ---------------------------------------------------------------------------------------------- compare
def _side(probe: Any, path: Path) -> dict[str, Any]:
    info = {"path": str(path), "faces": probe.faces, "box": [round(v, 2) for v in probe.aligned.face.box]}
    if probe.faces > 1:
        info["note"] = f"{probe.faces} faces found: used the largest"
    return info


def cmd_compare(args: argparse.Namespace) -> int:
    """Cosine similarity of the main faces of two images."""
    from faceapp.services.probe import embed_probe

    embedder = load_embedder(args)
    with open_pipeline(args) as pipe:
        a = embed_probe(pipe, embedder, args.a)
        b = embed_probe(pipe, embedder, args.b)
        fallback = pipe.fallback_active
    from faceapp.matching.thresholds import from_model_card

    similarity = float(np.dot(a.embedding, b.embedding))
    data = {"similarity": round(similarity, 6), "a": _side(a, args.a), "b": _side(b, args.b),
            "model_id": embedder.model_id, "trained": bool(embedder.trained),
            "model_folder": str(embedder.folder) if embedder.folder else None, "fallback": fallback}
    lines = [f"cosine similarity {similarity:+.4f}  ({embedder.model_id}"
             + ("" if embedder.trained else ", UNTRAINED: meaningless") + ")"]
    calibrated = from_model_card(embedder.card) if embedder.trained else None
    if calibrated is not None:          # the model's own verify threshold (a gallery may store another)
        same = similarity >= calibrated.verify
        data.update(threshold=calibrated.verify, same_person=same, target_far=calibrated.target_far)
        far = f", FAR {calibrated.target_far:g}" if calibrated.target_far else ""
        lines.append(f"{'same person' if same else 'different people'}: {similarity:.4f} "
                     f"{'>=' if same else '<'} {calibrated.verify:.4f} (the model card's verify threshold{far})")
    lines += [f"{side['path']}: {side['note']}" for side in (data["a"], data["b"]) if "note" in side]
    emit(args, data, "\n".join(lines))
    return int(ExitCode.OK)


# ---------------------------------------------------------------------------------------------- assets
def cmd_assets(args: argparse.Namespace) -> int:
    """Where the MediaPipe models resolve from; ``--download`` fetches the missing ones."""
    from faceapp.vision.assets import ASSETS, asset_url, resolve_asset, search_dirs, sha256_of

    rows = []
    failed = False
    for name, spec in ASSETS.items():
        row: dict[str, Any] = {"name": name, "description": spec.description, "url": asset_url(name)}
        try:
            path = resolve_asset(name, args.mediapipe_dir, allow_download=args.download,
                                 progress=download_reporter(name, quiet=args.json))
            digest = sha256_of(path)
            row.update(path=str(path), sha256=digest, known_version=digest in spec.sha256)
        except FaceAppError as error:
            row.update(path=None, error=str(error))
            failed = True
        rows.append(row)
    data = {"searched": [str(p) for p in search_dirs(args.mediapipe_dir)], "assets": rows}
    lines = ["searched: " + ", ".join(data["searched"])]
    for row in rows:
        if row["path"]:
            known = "" if row["known_version"] else "  (unknown version: sha256 differs from the official file)"
            lines.append(f"{row['name']}: {row['path']}{known}")
        else:
            lines.append(f"{row['name']}: MISSING - {row['error']}")
    emit(args, data, "\n".join(lines))
    return int(ExitCode.MODEL_ASSET) if failed else int(ExitCode.OK)


# ---------------------------------------------------------------------------------------------- register
def register(subparsers: argparse._SubParsersAction) -> None:
    """Add detect, align, embed, compare and assets."""
    p = subparsers.add_parser("detect", help="find faces: boxes, five points, pose, quality",
                              description="Find every face in each image (files or folders). " + MULTI_INPUT_RULE)
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files or folders")
    p.add_argument("--landmarks", action="store_true", help="include the 478 landmarks in --json output")
    p.add_argument("--blendshapes", action="store_true", help="include the 52 blendshape scores in --json output")
    p.add_argument("--crowd", action="store_true",
                   help="find every face of group photos: without it the landmarker reports at most 4 faces per "
                        "look at the image (a note says when that limit was reached); slower (overlapping tiles)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_vision_options(p)
    p.set_defaults(handler=cmd_detect)

    p = subparsers.add_parser("align", help="write aligned face crops (112x112 five-point template)",
                              description="Write the aligned crop of the main (largest) face of each image, "
                                          "mirroring the inputs' folder structure under OUT_DIR. " + MULTI_INPUT_RULE)
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files or folders")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT_DIR", help="output folder")
    p.add_argument("--all-faces", action="store_true", help="write every face (<name>_1.png, <name>_2.png, ...)")
    p.add_argument("--size", type=int_at_least(16), default=112, help="crop side in pixels (template scaled; default 112)")
    p.add_argument("--format", choices=("png", "jpg"), default="png", help="crop file format (default png)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_vision_options(p)
    p.set_defaults(handler=cmd_align)

    p = subparsers.add_parser("embed", help="embed the main face of images into an .npz",
                              description="Embed the main face of every image (folders are searched "
                                          "recursively). The .npz holds keys (paths relative to --root), emb "
                                          "(N x D float32, unit rows), failed (keys without a usable face) and "
                                          "model_id. Exit 0 when at least one image was embedded.")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.npz", help="output .npz file")
    p.add_argument("--root", type=Path, help="keys are relative to this folder (default: common parent of PATHs)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_vision_options(p)
    add_embed_options(p)
    p.set_defaults(handler=cmd_embed)

    p = subparsers.add_parser("compare", help="cosine similarity of the main faces of two images",
                              description="Cosine similarity of the main face of A and of B (the largest "
                                          "face when there are several, which the output says).")
    p.add_argument("a", type=Path, metavar="A", help="first image")
    p.add_argument("b", type=Path, metavar="B", help="second image")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_vision_options(p)
    add_embed_options(p)
    p.set_defaults(handler=cmd_compare)

    p = subparsers.add_parser("assets", help="show (or --download) the MediaPipe model files",
                              description="Where face_landmarker.task and face_detection_short_range.tflite "
                                          "resolve from: --mediapipe-dir, $FACEAPP_MODEL_DIR, the user data "
                                          "dir; --download fetches missing ones (SHA-256 verified). "
                                          "$FACEAPP_ASSET_BASE_URL selects a mirror.")
    p.add_argument("--mediapipe-dir", "--model-dir", dest="mediapipe_dir", type=Path, metavar="DIR")
    p.add_argument("--download", action="store_true", help="download missing models")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_assets)
