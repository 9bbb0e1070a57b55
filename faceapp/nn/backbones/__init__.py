"""nn/backbones package."""
