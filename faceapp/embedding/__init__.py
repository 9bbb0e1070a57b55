"""Embedding: model folders (weights + config + card), the Embedder, and backbone speed measurement.

    from faceapp.embedding import Embedder
    emb = Embedder.load()            # trained model if installed, else an UNTRAINED net (emb.trained False)
    vectors = emb.embed(aligned_crops)
"""

from faceapp.embedding.embedder import Embedder, default_model_dir, resolve_device
from faceapp.embedding.model_folder import (ModelConfig, load_model, preprocess, read_card, read_config, save_model,
                                            update_card, weights_sha256, write_card)

__all__ = [
    "Embedder", "ModelConfig", "default_model_dir", "load_model", "preprocess", "read_card", "read_config",
    "resolve_device", "save_model", "update_card", "weights_sha256", "write_card",
]
