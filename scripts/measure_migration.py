"""Time the migration that encrypts an existing plaintext gallery in place (schema 0002 -> head: backup first,
crops and templates sealed in one transaction, backup shredded once the sealed gallery opens).

    python scripts/measure_migration.py [--templates 10000] [--per-identity 5] [--crops] [--json]

Builds a clear gallery as FaceApp made it before encryption (random unit templates of 128 values, and with
``--crops`` one 112x112 PNG crop per template, taken from an AT&T photo), downgrades it to schema 0002, then
times ``Store(path)`` opening it, which runs the migrations. Numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def build_clear_gallery(path: Path, templates: int, per_identity: int, with_crops: bool) -> None:
    """A gallery at schema 0002 holding ``templates`` clear templates (and crops)."""
    from alembic import command

    from faceapp.storage import ModelSpec, NewIdentity, NewSample, Store
    from faceapp.storage.keys import KeyOptions
    from faceapp.storage.migrate import alembic_config

    rng = np.random.default_rng(0)
    crop = None
    if with_crops:
        import cv2

        from faceapp.core.paths import datasets_dir

        grey = cv2.imread(str(datasets_dir() / "att_faces" / "s1" / "1.pgm"), cv2.IMREAD_GRAYSCALE)
        crop = cv2.cvtColor(cv2.resize(grey, (112, 112)), cv2.COLOR_GRAY2BGR)
    model = ModelSpec("measure@000000000001", "measure", 128)
    with Store(path, keys=KeyOptions(encrypt=False, use_keyring=False)) as store:
        for identity in range(max(1, templates // per_identity)):
            vectors = rng.standard_normal((per_identity, 128)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            samples = [NewSample(embedding=v, crop=crop) for v in vectors]
            store.templates.enroll(NewIdentity(f"person {identity:05d}"), samples, model)
        with store.uow.write_engine.connect() as connection, connection.begin():
            command.downgrade(alembic_config(connection), "0002")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--templates", type=int, default=10_000)
    parser.add_argument("--per-identity", type=int, default=5)
    parser.add_argument("--crops", action="store_true", help="one PNG crop per template as well")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from faceapp.storage import Store
    from faceapp.storage.maintenance import check

    with tempfile.TemporaryDirectory(prefix="faceapp-migration-") as tmp:
        os.environ.setdefault("FACEAPP_KEY_DIR", str(Path(tmp) / "keys"))     # a throw-away key file
        os.environ.setdefault("FACEAPP_KEYRING", "off")
        path = Path(tmp) / "old.db"
        started = time.perf_counter()
        build_clear_gallery(path, args.templates, args.per_identity, args.crops)
        built_s = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6
        started = time.perf_counter()
        with Store(path) as store:
            migrate_s = time.perf_counter() - started
            report = check(store)
            result = {"templates": args.templates, "crops": args.crops, "schema_before": store.schema_before.current,
                      "migration_s": round(migrate_s, 3), "database_mb": round(size_mb, 1),
                      "build_s": round(built_s, 1), "sealed": report.encryption,
                      "loadavg": round(os.getloadavg()[0], 2)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['templates']} templates{' + crops' if args.crops else ''} ({result['database_mb']} MB) "
              f"schema {result['schema_before']} -> sealed in {result['migration_s']} s "
              f"(load average {result['loadavg']}); {result['sealed']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
