"""Backbone networks: aligned face crops (N, 3, S, S) -> raw embeddings (N, D), selected by name.

    from faceapp.nn.backbones import create_backbone, list_backbones
    net = create_backbone("mobilefacenet", embedding_dim=128)          # input_size=112 by default

Input: RGB float normalised ``(x/255 - 0.5) / 0.5``. Output: NOT L2-normalised. Registered:
``mobilefacenet``, ``resnet9``, ``iresnet18``, ``tiny`` (see docs/models.md for speed and size).
"""

from faceapp.nn.backbones.layers import Backbone, ConvBN, LinearBN, fuse_for_inference, prepare_for_inference
from faceapp.nn.backbones.registry import (BACKBONES, check_input_size, create_backbone, list_backbones, register_backbone,
                                           resolved_kwargs)

# Importing the modules registers their backbones.
from faceapp.nn.backbones import iresnet, mobilefacenet, mobilefacenet_relu6, tiny  # noqa: E402,F401  isort: skip

__all__ = [
    "BACKBONES", "Backbone", "ConvBN", "LinearBN", "check_input_size", "create_backbone", "fuse_for_inference",
    "list_backbones", "prepare_for_inference", "register_backbone", "resolved_kwargs",
]
