"""scripts/export_pretrained.py: the published weights as a model folder that the Embedder loads and that
computes exactly what the registered source computes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np

from faceapp.embedding.embedder import Embedder
from faceapp.embedding.pretrained import resolve_start

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_the_exported_folder_embeds_like_the_registered_source(tmp_path: Path, datasets: Path) -> None:
    crops = np.stack([cv2.resize(cv2.imread(str(p)), (112, 112))
                      for p in sorted((datasets / "celeba_lowres").glob("*/*.jpg"))[:4]])
    spec = importlib.util.spec_from_file_location("export_pretrained", SCRIPTS / "export_pretrained.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "ms1m"
    assert module.main(["mobilefacenet_ms1m", str(out)]) == 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["lineage"]["ms1m_ancestry"] is True and card["lineage"]["start"]["name"] == "mobilefacenet_ms1m"
    start = resolve_start("mobilefacenet_ms1m")
    reference = Embedder(start.build(), start.config, {"trained": True}, device="cpu")
    exported = Embedder.load(out, device="cpu")
    assert exported.trained and exported.model_id.startswith("mobilefacenet_ms1m@")
    np.testing.assert_allclose(exported.embed(crops), reference.embed(crops), atol=1e-5)
