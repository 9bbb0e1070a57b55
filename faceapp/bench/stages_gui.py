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


@bench_stage("live-headless", summary="services.live LiveRunner: 640x480 one-face video, identify, frames dropped "
             "when behind", order=55)
def stage_live_headless(ctx: BenchContext) -> Timed:
    from faceapp.gui.bench import HeadlessLive, stage_note

    live = ctx.shared("live-headless", lambda: HeadlessLive(_setup(ctx)))
    timed = Timed(call=live.next, unit="frame", note="")

    def call() -> None:
        live.next()
        timed.note = stage_note(live.times[-200:])

    timed.call = call
    return timed


@bench_stage("live-gui", summary="GUI Live page (offscreen window): the same video through LiveThread, "
             "overlays and painting", order=56)
def stage_live_gui(ctx: BenchContext) -> Timed:
    try:
        from faceapp.gui.bench import GuiLive, stage_note

        live = ctx.shared("live-gui", lambda: GuiLive(_setup(ctx)))
    except ImportError as error:
        raise StageSkipped(f"the Qt GUI cannot start here: {error}") from error
    timed = Timed(call=live.next, unit="frame", note="")

    def call() -> None:
        live.next()
        timed.note = stage_note(live.times[-200:], {"display": live.display_ms[-200:]})

    timed.call = call
    return timed
