"""``faceapp bench``: a registry of named, timed stages (framework.py) and the stage modules
``stages_*.py`` that fill it. See docs/pipeline.md."""
