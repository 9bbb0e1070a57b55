"""Time to first paint of ``python main.py``: from starting the process to the window's first paint event.

    QT_QPA_PLATFORM=offscreen FACEAPP_MODEL_DIR=../shared/models python scripts/startup_time.py [--runs 3]

Each run starts ``python main.py`` on a fresh temporary database and settings with FACEAPP_STARTUP_TIMING=exit
(the window quits after its first paint) and measures the wall time until that line; prints every run and the
median (after one warm-up run that writes the byte code). Also prints which heavy modules (torch, mediapipe, sklearn, cv2) were imported before the first paint.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "mediapipe", "sklearn", "cv2", "pyqtgraph", "sqlalchemy")


def one_run(python: str, pycache: Path) -> tuple[float, float, list[str]]:
    """(wall seconds to first paint, the app's own figure, heavy modules loaded by then). Byte code is cached
    in ``pycache`` (as an installed package has its .pyc files), even where PYTHONDONTWRITEBYTECODE is set."""
    with tempfile.TemporaryDirectory(prefix="faceapp-startup-") as root:
        env = dict(os.environ, FACEAPP_DATA_DIR=str(Path(root) / "data"), FACEAPP_STARTUP_TIMING="exit",
                   FACEAPP_STARTUP_MODULES=",".join(HEAVY), PYTHONPATH=str(REPO), PYTHONPYCACHEPREFIX=str(pycache))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        start = time.perf_counter()
        proc = subprocess.Popen([python, str(REPO / "main.py"), "--db", str(Path(root) / "g.db"), "--page", "live"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        wall, own, loaded = float("nan"), float("nan"), []
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("faceapp: first paint after"):
                wall = time.perf_counter() - start
                own = float(line.split()[4])
            elif line.startswith("faceapp: loaded before first paint:"):
                loaded = line.split(":", 2)[2].split()
        proc.wait(120)
    return wall, own, loaded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    walls = []
    pycache = Path(tempfile.mkdtemp(prefix="faceapp-pycache-"))
    one_run(sys.executable, pycache)                  # warm-up: writes the byte code, not counted
    for run in range(args.runs):
        wall, own, loaded = one_run(sys.executable, pycache)
        walls.append(wall)
        print(f"run {run + 1}: first paint {wall:.2f} s after the process started ({own:.2f} s after "
              f"faceapp.gui.app was imported); heavy modules loaded by then: {', '.join(loaded) or 'none'}")
    print(f"median: {statistics.median(walls):.2f} s over {len(walls)} runs (load average "
          f"{os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
