"""Screenshots of the analyst pages (Trainer, Thresholds, Embeddings) in both themes, for docs/analyst.md.

    QT_QPA_PLATFORM=offscreen python scripts/analyst_screenshots.py [--out docs/screenshots]

Everything happens in a temporary data folder (the user's settings, database and models are not
touched): AT&T s21-s32 are enrolled with an untrained tiny network, the Trainer tab trains a tiny
ArcFace model on AT&T s1-s20 (about a minute on two CPU cores) and activates it (re-embedding the
gallery), the Thresholds tab calibrates on the gallery, the Embeddings tab projects it and trains the
loss-geometry view. Needs ../shared/datasets and ../shared/models (FACEAPP_DATASETS / FACEAPP_MODEL_DIR).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZE = (1280, 800)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("FACEAPP_DATASETS", str(REPO.parent / "shared" / "datasets"))
    os.environ.setdefault("FACEAPP_MODEL_DIR", str(REPO.parent / "shared" / "models"))
    root = Path(tempfile.mkdtemp(prefix="faceapp-shots-"))
    os.environ["FACEAPP_DATA_DIR"] = str(root / "data")
    os.environ.setdefault("FACEAPP_CACHE_DIR", str(root / "cache"))
    sys.path.insert(0, str(REPO))

    import faceapp.gui  # noqa: F401 - PySide6 fix first
    from PySide6.QtWidgets import QApplication

    from faceapp.core.paths import datasets_dir
    from faceapp.embedding import Embedder
    from faceapp.gui.app import build_parser, create_window
    from faceapp.storage import Store
    from tests.services.analyst_data import enrol_att, save_untrained_model

    att = datasets_dir() / "att_faces"
    first = save_untrained_model(root / "untrained", name="untrained-tiny", dim=64)
    db = root / "gallery.db"
    with Store(db) as store:
        enrol_att(store, Embedder.load(first, device="cpu"), att, range(21, 33), per_subject=5)

    app = QApplication.instance() or QApplication([])
    window = create_window(build_parser().parse_args(
        ["--db", str(db), "--model", str(first), "--theme", "dark", "--device", "cpu",
         "--mediapipe-dir", os.environ["FACEAPP_MODEL_DIR"]]))
    window.resize(*SIZE)
    window.show()

    def pump(done, timeout: float = 900.0) -> None:  # noqa: ANN001
        start = time.monotonic()
        while not done():
            app.processEvents()
            time.sleep(0.02)
            if time.monotonic() - start > timeout:
                raise TimeoutError("the GUI did not finish in time")
        for _ in range(40):
            app.processEvents()
            time.sleep(0.01)

    def shoot(name: str, themes: tuple[str, ...] = ("dark", "light")) -> None:
        for theme in themes:
            window.set_theme(theme)
            window.banners.clear()
            pump(lambda: True)
            path = args.out / f"{name}-{theme}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            window.grab().save(str(path))
            print(f"{path} ({path.stat().st_size // 1024} KB)")
        window.set_theme("dark")

    pump(lambda: not window.ctx.loading)
    trainer = window.show_page("trainer")
    trainer.data_edit.setText(str(att))
    trainer.identities_edit.setText("s1-s20")
    trainer.refresh_summary()
    pump(lambda: trainer.summary is not None)
    trainer.loss_box.setCurrentText("arcface")
    trainer.loss_form.set_values({"s": 16.0, "m": 0.3})
    trainer.backbone_box.setCurrentText("tiny")
    trainer.embedding_dim.setValue(64)
    trainer.input_size.setValue(64)
    trainer.epochs.setValue(25)
    trainer.batch_size.setValue(32)
    trainer.lr.setValue(0.05)
    trainer.device_box.setCurrentText("cpu")
    trainer.log_every.setValue(2)
    trainer.holdout.setValue(0.2)
    trainer.name_edit.setText("att-tiny-arcface")
    trainer.out_edit.setText(str(root / "att-tiny-arcface"))
    trainer.start()
    pump(lambda: trainer.result is not None or not trainer.training)
    trainer.activate()
    pump(lambda: not trainer.activation.busy and trainer.summary is not None and not trainer.summary_panel.busy)
    shoot("trainer")

    thresholds = window.show_page("thresholds")
    thresholds.compute()
    pump(lambda: thresholds.scores is not None and not thresholds.job.busy)
    thresholds.target_box.setCurrentIndex(0)
    thresholds.set_at_target_far()
    thresholds.set_identify_at_target()
    shoot("thresholds")

    embeddings = window.show_page("embeddings")
    pump(lambda: embeddings.points is not None and not embeddings.job.busy)
    embeddings.method_box.setCurrentIndex(embeddings.method_box.findData("tsne"))
    pump(lambda: not embeddings.job.busy)
    x, y = embeddings.coords[7]
    from PySide6.QtCore import QPoint, QPointF

    scene = embeddings.projection_plot.plot_item.vb.mapViewToScene(QPointF(float(x), float(y)))
    where = embeddings.projection_plot.widget.mapFromScene(scene)
    embeddings.show_hover(7, QPoint(where.x(), where.y()))
    shoot("embeddings")
    embeddings.tabs.setCurrentIndex(1)
    shoot("embeddings-similarity", ("dark",))
    embeddings.tabs.setCurrentIndex(2)
    embeddings.train_geometry()
    pump(lambda: embeddings.geometry is not None and not embeddings.geo_job.busy)
    shoot("embeddings-geometry")
    embeddings.geo_dim.setCurrentIndex(1)
    embeddings.train_geometry()
    pump(lambda: embeddings.geometry.dim == 3 and not embeddings.geo_job.busy)
    shoot("embeddings-sphere", ("dark",))
    window.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
