"""Reusable widgets: the video view with face overlays, image conversions, thumbnails."""
