"""Liveness commands: ``faceapp liveness IMAGE|VIDEO``, ``liveness-eval`` and ``liveness-threshold``.

``liveness`` prints the decision (JSON with ``--json``) and records it in the audit log. Exit status: 0 live,
17 attack suspected, and when it is "not checked": 5 PAD weights missing or wrong, 4 no face, 13 several
faces, 18 video too short / too dark / challenge not judgeable, 3 unreadable input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from faceapp.cli.commands.identities import add_pad_model_option, add_store_options, open_store
from faceapp.cli.commands.pipeline import add_vision_options, open_pipeline
from faceapp.cli.output import emit
from faceapp.core.errors import ExitCode, InputFileError

MODES = ("passive", "challenge", "both")
ACTIONS = ("blink", "turn_left", "turn_right", "smile")


def checker_for(args: argparse.Namespace, mode: str):  # noqa: ANN201 - LivenessChecker
    from faceapp.liveness import LivenessChecker

    return LivenessChecker(mode, pad_model_dir=getattr(args, "pad_model_dir", None))


def record(args: argparse.Namespace, decision, *, details: dict[str, Any]) -> None:  # noqa: ANN001
    """Append ``decision`` to the audit log of ``--db`` (the one audit owner: services.audit.liveness_entry)."""
    from faceapp.services.audit import liveness_entry
    from faceapp.services.gallery import default_operator

    operator = getattr(args, "operator", None) or default_operator()
    with open_store(args) as store:
        store.audit.append(liveness_entry(decision, operator=operator, details=details), queue_when_locked=True)


def liveness_text(decision) -> str:  # noqa: ANN001
    head = {"live": "LIVE", "attack suspected": "ATTACK SUSPECTED", "not checked": "NOT CHECKED"}[decision.state.value]
    return f"{head}: {decision.reason}"


def _steps(text: str):  # noqa: ANN202 - tuple[Step, ...]
    from faceapp.liveness import Action, Step

    steps = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        name, _, degrees = item.partition(":")
        if name not in ACTIONS:
            raise argparse.ArgumentTypeError(f"unknown challenge action {name!r}; known: {', '.join(ACTIONS)}")
        action = Action(name)
        try:
            angle = float(degrees) if degrees else (20.0 if name.startswith("turn") else 0.0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad angle in {item!r} (use e.g. turn_left:20)") from None
        steps.append(Step(action, angle))
    if not steps:
        raise argparse.ArgumentTypeError("give at least one challenge action")
    return tuple(steps)


def cmd_liveness(args: argparse.Namespace) -> int:
    from faceapp.capture.images import is_image_path, read_image
    from faceapp.capture.sources import VIDEO_EXTENSIONS, VideoFileSource

    path: Path = args.input
    if not path.exists():
        raise InputFileError(f"{path}: no such file", path=str(path))
    is_video = path.suffix.lower() in VIDEO_EXTENSIONS
    if not is_video and not is_image_path(path):
        raise InputFileError(f"{path}: neither an image nor a video file (by its extension)", path=str(path))
    mode = args.mode or ("both" if is_video else "passive")
    checker = checker_for(args, mode)
    if is_video:
        with VideoFileSource(path) as source, open_pipeline(args, "video") as pipeline:
            decision = checker.check_frames(source, pipeline, args.challenge,
                                            time_limit_ms=args.time_limit * 1000 if args.time_limit else None)
    else:
        image = read_image(path)
        with open_pipeline(args) as pipeline:
            faces = pipeline.detect(image)
        decision = checker.check_image(image, faces)
    data = {"input": str(path), "kind": "video" if is_video else "image", **decision.as_dict()}
    if not args.no_audit:
        record(args, decision, details={"input": str(path)})
    emit(args, data, liveness_text(decision))
    return int(decision.exit_code)


def cmd_liveness_eval(args: argparse.Namespace) -> int:
    from faceapp.core.paths import datasets_dir
    from faceapp.liveness import PassiveScorer
    from faceapp.liveness.evaluate import (blink_series, blink_video_report, nuaa_report, replay_report,
                                           score_folder)
    from faceapp.liveness.report import write_report

    import numpy as np

    nuaa_dir = args.nuaa or datasets_dir() / "nuaa_pad"
    blink_dir = args.blinks or datasets_dir() / "blink_videos"
    result: dict[str, Any] = {"command": "faceapp " + " ".join(sys.argv[1:]) if sys.argv[1:] else "faceapp liveness-eval"}
    scorer = PassiveScorer(args.pad_model_dir)
    result["pad_model"] = scorer.id
    with open_pipeline(args) as pipeline:
        job = score_folder(nuaa_dir, scorer, pipeline, every=args.every)
        try:
            while True:
                done, total = next(job)
                if not args.quiet and (done % 50 == 0 or done == total):
                    print(f"\rscoring {nuaa_dir.name}: {done}/{total}", end="\n" if done == total else "",
                          file=sys.stderr, flush=True)
        except StopIteration as stop:
            scored = stop.value
    result["nuaa"] = nuaa_report(scored, target_bpcer=args.target_bpcer)
    result["nuaa_scores"] = [s.__dict__ for s in scored]

    def factory():  # noqa: ANN202
        return open_pipeline(args, "video")

    if not args.skip_blinks:
        result["blinks"] = {}
        for video in sorted(Path(blink_dir).glob("*.avi")):
            labels = np.loadtxt(video.with_name(video.stem + "_ideal.csv"))
            times, faces = blink_series(video, factory)
            result["blinks"][video.stem] = blink_video_report(times, faces, labels)
            if not args.quiet:
                print(f"blinks {video.stem}: done", file=sys.stderr)
    result["replay"] = replay_report(nuaa_dir, factory)
    paths = write_report(result, args.out, scored)
    nuaa = result["nuaa"]["test"]
    text = "\n".join([f"threshold {result['nuaa']['threshold']:.4f}; test subjects: BPCER {nuaa['bpcer']:.4f}, "
                      + ", ".join(f"APCER {k} {v:.4f}" for k, v in nuaa["apcer"].items()),
                      f"replay runs passed: {result['replay']['passed']} of {result['replay']['runs']}",
                      "wrote " + ", ".join(str(p) for p in paths)])
    emit(args, {k: v for k, v in result.items() if k != "nuaa_scores"} | {"files": [str(p) for p in paths]}, text)
    return 0


def cmd_liveness_threshold(args: argparse.Namespace) -> int:
    from faceapp.app.liveness_thresholds import save_liveness_threshold
    from faceapp.liveness import PassiveScorer, passive_threshold

    scorer = PassiveScorer(args.pad_model_dir)
    if args.set is not None:
        if not 0.0 <= args.set <= 1.0:
            raise InputFileError(f"--set must be in 0..1, got {args.set}")
        with open_store(args) as store:
            save_liveness_threshold(store, scorer.id, args.set, target_bpcer=args.target_bpcer,
                                    operator=getattr(args, "operator", None))
    current = passive_threshold(scorer.id)
    emit(args, {"pad_model": scorer.id, "threshold": current.value, "source": current.source,
                "target_bpcer": current.target_bpcer, "saved_at": current.saved_at},
         f"{scorer.id}: passive threshold {current.value:.4f} ({current.source})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add liveness, liveness-eval and liveness-threshold."""
    p = subparsers.add_parser(
        "liveness", help="presentation-attack check of an IMAGE (passive) or a VIDEO (challenge + passive)",
        description="Passive MiniFASNet score of the one face of IMAGE, or, for a VIDEO, the active challenge "
                    "(--challenge, in that order) and passive scores of sampled frames. Prints live / attack "
                    "suspected / not checked with the scores; audited. Exit 0 live, "
                    f"{int(ExitCode.ATTACK_SUSPECTED)} attack suspected, {int(ExitCode.MODEL_ASSET)} PAD weights "
                    f"missing, {int(ExitCode.NO_FACE)} no face, {int(ExitCode.SEVERAL_FACES)} several faces, "
                    f"{int(ExitCode.LIVENESS_NOT_CHECKED)} too short / too dark / not judgeable.")
    p.add_argument("input", type=Path, metavar="IMAGE|VIDEO")
    p.add_argument("--mode", choices=MODES, help="checks to run (default: passive for an image, both for a video)")
    p.add_argument("--challenge", type=_steps, default="blink", metavar="ACTIONS",
                   help="comma-separated actions a video must show in order: blink, smile, turn_left[:DEG], "
                        "turn_right[:DEG] (default blink)")
    p.add_argument("--time-limit", type=float, metavar="S", help="challenge time limit in seconds (default: the video)")
    p.add_argument("--no-audit", action="store_true", help="do not write the decision to the audit log")
    add_pad_model_option(p)
    add_store_options(p)
    add_vision_options(p)
    p.set_defaults(handler=cmd_liveness)

    p = subparsers.add_parser(
        "liveness-eval", help="measure liveness: APCER/BPCER on NUAA, blink challenge on blink_videos",
        description="Writes liveness_eval.md, liveness_eval.json and liveness_det.png into --out: APCER per attack "
                    "kind and BPCER at a threshold chosen at --target-bpcer on half of the subjects and reported on "
                    "the others; blink recall, false blinks per minute and challenge pass times; still-photo "
                    "replays through the challenge.")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--nuaa", type=Path, metavar="DIR", help="labelled folder (default <datasets>/nuaa_pad)")
    p.add_argument("--blinks", type=Path, metavar="DIR", help="blink videos (default <datasets>/blink_videos)")
    p.add_argument("--target-bpcer", type=float, default=0.05, help="BPCER the threshold is chosen at (default 0.05)")
    p.add_argument("--every", type=int, default=1, metavar="N", help="score every N-th image (default all)")
    p.add_argument("--skip-blinks", action="store_true", help="leave out the blink videos")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_pad_model_option(p)
    add_vision_options(p)
    p.set_defaults(handler=cmd_liveness_eval)

    p = subparsers.add_parser("liveness-threshold", help="show or set the passive liveness threshold of the PAD models",
                              description="Prints the passive threshold in force (saved or default); --set stores one "
                                          "(audited).")
    p.add_argument("--set", type=float, metavar="T", help="store T (0..1) as the threshold")
    p.add_argument("--target-bpcer", type=float, help="the BPCER T was chosen at (recorded with it)")
    add_pad_model_option(p)
    add_store_options(p)
    p.set_defaults(handler=cmd_liveness_threshold)
