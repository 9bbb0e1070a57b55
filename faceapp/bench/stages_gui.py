"""Bench stages of the live view: the headless live pipeline and the GUI's Live page, same video, same run.

The work lives in ``faceapp.gui.bench`` (imported only when these stages run, since it needs Qt); see
there for what one timed call is. Compare ``live-gui`` with ``live-headless``: the GUI should lose little.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faceapp.bench.framework import BenchContext, StageSkipped, Timed, bench_stage
from faceapp.bench.stages_pipeline import video_path


def _setup(ctx: BenchContext) -> Any:
    from faceapp.gui.bench import LiveBenchSetup

    options = ctx.options
    model = Path(options["model_dir"]) if options.get("model_dir") else None
    mediapipe = Path(options["mediapipe_dir"]) if options.get("mediapipe_dir") else None
    return ctx.shared("live-bench-setup", lambda: LiveBenchSetup(video_path(ctx), ctx.work_dir, model, mediapipe))


def _headless(ctx: BenchContext, realtime: bool, liveness: str = "off") -> Timed:
    from faceapp.gui.bench import HeadlessLive, stage_note

    live = ctx.shared(f"live-headless:{realtime}:{liveness}",
                      lambda: HeadlessLive(_setup(ctx), realtime=realtime, liveness=liveness))
    timed = Timed(call=live.next, unit="frame", note="")

    def call() -> None:
        live.next()
        timed.note = stage_note(live.times[-200:])

    timed.call = call
    return timed


def _gui(ctx: BenchContext, realtime: bool) -> Timed:
    try:
        from faceapp.gui.bench import GuiLive, stage_note

        live = ctx.shared(f"live-gui:{realtime}", lambda: GuiLive(_setup(ctx), realtime=realtime))
    except ImportError as error:
        raise StageSkipped(f"the Qt GUI cannot start here: {error}") from error
    timed = Timed(call=live.next, unit="frame", note="")

    def call() -> None:
        live.next()
        timed.note = stage_note(live.times[-200:], {"display": live.display_ms[-200:]})

    timed.call = call
    return timed


@bench_stage("live-headless", summary="services.live LiveRunner on its own thread: 640x480 one-face video at "
             "30 fps, identify, frames dropped when behind", order=55)
def stage_live_headless(ctx: BenchContext) -> Timed:
    return _headless(ctx, realtime=True)


@bench_stage("live-gui", summary="GUI Live page (offscreen window): the same video through LiveThread, "
             "overlays and painting", order=56)
def stage_live_gui(ctx: BenchContext) -> Timed:
    return _gui(ctx, realtime=True)


@bench_stage("live-headless-liveness", summary="live-headless with liveness 'both' (passive MiniFASNet pair every "
             "10th frame of a tracked face + the blink/turn/smile challenge on every frame)", order=55.5)
def stage_live_headless_liveness(ctx: BenchContext) -> Timed:
    return _headless(ctx, realtime=True, liveness="both")


@bench_stage("live-headless-max", summary="live-headless with the video read as fast as it decodes",
             order=57, default=False)
def stage_live_headless_max(ctx: BenchContext) -> Timed:
    return _headless(ctx, realtime=False)


@bench_stage("live-gui-max", summary="live-gui with the video read as fast as it decodes", order=58, default=False)
def stage_live_gui_max(ctx: BenchContext) -> Timed:
    return _gui(ctx, realtime=False)
