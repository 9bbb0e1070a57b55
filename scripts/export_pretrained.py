"""Write a registered pretrained source (``faceapp.embedding.pretrained.PRETRAINED``) as a model folder, so the
weights as published can be scored like any model (the README's "what each lever added" starts there):

    python scripts/export_pretrained.py mobilefacenet_ms1m runs/ms1m-as-published
    faceapp eval --model runs/ms1m-as-published --pairs ../shared/datasets/cfp --format cfp --protocol FF \
        --protocol FP --folds 9,10 [--template turned]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp.embedding.model_folder import ModelConfig, save_model  # noqa: E402
from faceapp.embedding.pretrained import PRETRAINED, resolve_start  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(PRETRAINED), help="registered pretrained source")
    parser.add_argument("out", type=Path, help="model folder to write")
    args = parser.parse_args(argv)
    start = resolve_start(args.name)
    card = {"trained": True, "lineage": {"start": start.lineage, "teacher": None, "data": [],
                                         "ms1m_ancestry": bool(start.lineage.get("ms1m_ancestry")),
                                         "benchmark_caveat": start.lineage.get("caveat", "")},
            "note": "the pretrained weights as published, not trained further here"}
    save_model(args.out, start.build(), ModelConfig(**{**vars(start.config), "name": args.name}), card)
    print(f"{args.name} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
