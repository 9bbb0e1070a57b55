"""Reusable widgets: the video view with face overlays, the exact threshold slider, image conversions, thumbnails."""
