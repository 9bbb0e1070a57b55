"""Subprocess for the enrolment reliability tests (not a test module).

    python enroll_worker.py DB FACES_PICKLE PREFIX COUNT [--delay-ms N]

Enrols COUNT identities PREFIX0000, PREFIX0001, ... (COUNT 0 = forever), each from the same five real
aligned AT&T faces, through EnrollmentService (quality gate, one transaction each) with a small numpy
embedder so that the process starts fast (no torch). Prints "ready" once the store is open, "B <name>"
when a write transaction begins and "C <name>" after it committed, so the parent knows whether a
SIGKILL landed inside a transaction. ``--delay-ms`` sleeps before every SQL statement of a write
transaction to widen it.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time

import cv2
import numpy as np
from sqlalchemy import event
from sqlalchemy.orm import Session

from faceapp.core.progress import run_to_completion
from faceapp.services.enrollment import EnrollmentService
from faceapp.storage import NewIdentity, Store
from faceapp.storage.engine import WRITE_OPTION


class ProjectionEmbedder:
    """Grey 28x28 crop -> fixed random projection -> unit vector (deterministic, numpy only)."""

    model_id = "projection@000000000001"
    name = "projection"
    dim = 32
    card: dict = {"trained": False}

    def __init__(self) -> None:
        self._matrix = np.random.default_rng(0).standard_normal((28 * 28, self.dim)).astype(np.float32)

    def embed(self, crops, batch_size: int = 64) -> np.ndarray:
        grey = [cv2.resize(cv2.cvtColor(c, cv2.COLOR_BGR2GRAY), (28, 28)).reshape(-1) for c in crops]
        out = (np.asarray(grey, np.float32) / 255.0 - 0.5) @ self._matrix
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("faces")
    parser.add_argument("prefix")
    parser.add_argument("count", type=int)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    with open(args.faces, "rb") as handle:
        faces = pickle.load(handle)
    store = Store(args.db, busy_timeout_s=10.0, retries=8)
    current: dict = {"name": None, "write": None}     # write: the Session of the open write transaction

    @event.listens_for(Session, "after_begin")
    def _began(session, transaction, connection) -> None:  # noqa: ANN001
        if connection.get_execution_options().get(WRITE_OPTION):
            current["write"] = session
            print(f"B {current['name']}", flush=True)

    @event.listens_for(Session, "after_commit")
    def _committed(session) -> None:  # noqa: ANN001
        # only the write transaction's own commit: the gallery key is opened by a short read of its own
        # (another Session) on first use, in the middle of the first enrolment
        if session is current["write"]:
            current["write"] = None
            print(f"C {current['name']}", flush=True)

    if args.delay_ms:
        @event.listens_for(store.engine, "before_cursor_execute")
        def _slow(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
            if conn.get_execution_options().get(WRITE_OPTION):
                time.sleep(args.delay_ms / 1000.0)

    service = EnrollmentService(store, ProjectionEmbedder(), pipeline=None, duplicate_check=False, operator="worker")
    start = sum(1 for i in store.identities.list() if i.name.startswith(args.prefix))
    print("ready", flush=True)
    number = start
    while args.count == 0 or number < start + args.count:
        current["name"] = f"{args.prefix}{number:04d}"
        run_to_completion(service.enroll(NewIdentity(current["name"]), faces))
        number += 1
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
