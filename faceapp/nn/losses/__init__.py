"""nn/losses package."""
