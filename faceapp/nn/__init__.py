"""Neural-network building blocks (torch only; imports nothing above ``faceapp.core``).

- ``faceapp.nn.backbones``: face backbones by name (``create_backbone``, ``list_backbones``): aligned crops
  (N, 3, S, S) -> raw embeddings (N, D).
- ``faceapp.nn.losses`` / ``faceapp.nn.miners``: the loss zoo and the pair/triplet miners.

Subpackages are imported explicitly (``from faceapp.nn.backbones import create_backbone``) so that using
one part does not load the others.
"""
