"""Screenshots of the workstation's operator pages (Live, Enroll, Identities) in the dark and light themes at
1920x1080 (``NAME-THEME.png``) and 1024x640 (``NAME-THEME-1024x640.png``), with a 30-character name enrolled,
and of the Thresholds tab scoring the active (trained) model on CFP-FF folds 9-10 (at the large size).

    QT_QPA_PLATFORM=offscreen FACEAPP_MODEL_DIR=../shared/models python scripts/gui_screenshots.py [--out docs/screenshots]

Builds a throw-away gallery from AT&T faces (``$FACEAPP_DATASETS/att_faces``: subjects 1-6 enrolled as
"Subject N") and "camera" videos from AT&T photos, opens the real main window offscreen and grabs it.
Uses the active embedding model (models/default unless FACEAPP_EMBED_MODEL says otherwise).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import faceapp.gui  # noqa: E402,F401 - PySide6 refcount fix before Qt is used
from faceapp.capture.images import read_image  # noqa: E402
from faceapp.capture.synthetic import face_video_frames, write_video  # noqa: E402
from faceapp.core.paths import datasets_dir  # noqa: E402
from faceapp.core.progress import run_to_completion  # noqa: E402

SIZES = ((1920, 1080), (1024, 640))      # the first is the README's size (file names without a size suffix)
LONG_NAME = "Alexandra Whitfield-Okonkwo 01"  # 30 characters: names of that length must not clip anywhere


def build_gallery(root: Path, att: Path) -> tuple[Path, dict[str, Path]]:
    """A SQLite gallery (LONG_NAME, Subject 2..7) and the videos the screenshots play."""
    from faceapp.embedding import Embedder
    from faceapp.services.enrollment import EnrollmentService
    from faceapp.services.gallery import Gallery, model_spec
    from faceapp.storage import NewIdentity, Store
    from faceapp.vision.pipeline import FacePipeline

    videos = {
        "known": write_video(face_video_frames(read_image(att / "s1" / "1.pgm"), 60, motion_px=4), root / "known.avi"),
        "s5": write_video([f for i in range(1, 9) for f in face_video_frames(read_image(att / "s5" / f"{i}.pgm"), 10,
                                                                              motion_px=2)], root / "s5.avi"),
    }
    db = root / "gallery.db"
    embedder = Embedder.load()
    with Store(db) as store, FacePipeline("image") as pipeline:
        service = EnrollmentService(store, embedder, pipeline=pipeline, operator="demo")
        # subject 1 (LONG_NAME) is enrolled from other photos than the one the "camera" shows
        run_to_completion(service.enroll(NewIdentity(LONG_NAME, external_id="ORL-01"),
                                         [att / "s1" / f"{i}.pgm" for i in (2, 3, 4, 5)]))
        for subject in (2, 3, 4, 6, 7):
            images = [att / f"s{subject}" / f"{i}.pgm" for i in (1, 2, 3, 4)]
            run_to_completion(service.enroll(NewIdentity(f"Subject {subject}", external_id=f"ORL-{subject:02d}"), images))
        if not embedder.trained:   # an untrained network scores everyone ~0.93: demo thresholds above that
            Gallery(store, model_spec(embedder), embedder.card).save_thresholds(0.9, 0.9, source="demo")
    return db, videos


def spin(app, seconds: float, until=None) -> bool:  # noqa: ANN001
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
        if until is not None and until():
            return True
    return until is None


def shoot(theme: str, db: Path, videos: dict[str, Path], out: Path, att: Path,
          size: tuple[int, int] = SIZES[0]) -> list[Path]:
    from PySide6.QtWidgets import QApplication

    from faceapp.gui.app import build_parser, create_window
    from faceapp.gui.settings import settings_path

    settings_path().unlink(missing_ok=True)
    window = create_window(build_parser().parse_args(["--db", str(db), "--theme", theme, "--page", "live"]))
    app = QApplication.instance()
    window.resize(*size)
    window.show()
    spin(app, 60, lambda: not window.ctx.loading)
    saved = []

    def grab(name: str) -> None:
        spin(app, 0.3)
        suffix = "" if size == SIZES[0] else f"-{size[0]}x{size[1]}"
        path = out / f"{name}-{theme}{suffix}.png"
        window.grab().save(str(path), "PNG", 9)
        saved.append(path)

    live = window.page("live")
    spin(app, 10, lambda: live.claim_box.count() > 0)
    live.landmarks_box.setChecked(True)
    live.set_mode("identify")
    live.start_source(videos["known"])
    spin(app, 20, lambda: live.result is not None and live.result.faces and live.result.faces[0].label == LONG_NAME)
    spin(app, 0.8)
    grab("live-identify")
    live.stop()
    live.set_mode("verify")
    live.set_claimed(live.claim_box.itemData(0))
    live.landmarks_box.setChecked(False)
    live.start_source(videos["known"])
    spin(app, 20, lambda: live.result is not None and live.result.faces and live.result.faces[0].verify is not None)
    spin(app, 0.5)
    grab("live-verify")
    live.stop()

    enroll = window.show_page("enroll")
    spin(app, 10, lambda: enroll.service is not None)
    enroll.set_details("Subject 5", external_id="ORL-05", consent=True)
    enroll.go_capture()
    enroll.start_camera(videos["s5"])
    spin(app, 30, lambda: len(enroll.samples) >= 3)
    grab("enroll-capture")
    enroll.stop_camera()
    enroll.add_files([str(att / "s5" / "9.pgm"), str(att / "s5" / "10.pgm")])
    spin(app, 20, lambda: not enroll.busy)
    enroll.prepare()
    spin(app, 30, lambda: enroll.step == 2 and not enroll.busy)
    grab("enroll-review")
    enroll.save()
    spin(app, 30, lambda: enroll.step == 3 and not enroll.busy)

    identities = window.show_page("identities")
    spin(app, 10, lambda: len(identities.rows) >= 6)
    identities.select_identity(identities.rows[0][0].id)
    spin(app, 10, lambda: identities.detail is not None)
    grab("identities")

    # the shipped model's scores on people it never trained on (CFP-FF folds 9-10), threshold at FAR 1e-3
    cfp = datasets_dir() / "cfp"
    if size == SIZES[0] and window.ctx.embedder is not None and window.ctx.embedder.trained and cfp.is_dir():
        thresholds = window.show_page("thresholds")
        thresholds.source_box.setCurrentIndex(thresholds.source_box.findData("pairs"))
        thresholds.protocol.set_format("cfp")
        thresholds.protocol.pairs.setText(str(cfp))
        thresholds.protocol.folds.setText("9,10")
        thresholds.compute()
        spin(app, 300, lambda: thresholds.scores is not None and not thresholds.job.busy)
        thresholds.target_box.setCurrentIndex(max(0, thresholds.target_box.findData(1e-3)))
        thresholds.set_at_target_far()
        grab("thresholds-cfp")
    window.close()
    spin(app, 0.5)
    # the demo enrolled Subject 5: remove it so the other theme starts from the same gallery
    from faceapp.storage import Store

    with Store(db) as store:
        found = store.identities.find("Subject 5")
        if found is not None:
            store.identities.delete(found.id)
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--themes", default="dark,light")
    parser.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES), help="WxH,WxH")
    args = parser.parse_args(argv)
    att = datasets_dir() / "att_faces"
    if not att.is_dir():
        print(f"error: {att} not found; set FACEAPP_DATASETS", file=sys.stderr)
        return 9
    args.out.mkdir(parents=True, exist_ok=True)
    from PySide6.QtWidgets import QApplication

    QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="faceapp-shots-") as tmp:
        os.environ["FACEAPP_DATA_DIR"] = str(Path(tmp) / "data")     # GUI settings of the demo, not the user's
        db, videos = build_gallery(Path(tmp), att)
        sizes = [tuple(int(v) for v in text.lower().split("x")) for text in args.sizes.split(",")]
        for theme, size in ((t.strip(), z) for t in args.themes.split(",") for z in sizes):
            for path in shoot(theme, db, videos, args.out, att, size):
                print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
