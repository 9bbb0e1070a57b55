"""The names of the Embedder's engines (no torch import: the command line lists them before loading anything)."""

ENV_ENGINE = "FACEAPP_EMBED_ENGINE"
ENGINES = ("auto", "torch", "onnxruntime", "onnxruntime-int8")
