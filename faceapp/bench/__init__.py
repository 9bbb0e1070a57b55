"""``faceapp bench``: a registry of named, timed stages (framework.py), the stage modules ``stages_*.py`` that
fill it, and the gallery timings they share with ``scripts/bench_gallery.py`` (gallery.py). The backbone
profiler is ``faceapp.embedding.speed`` (the trainer reads the machine load through it too) and the live-GUI
timing ``faceapp.gui.bench`` (it needs Qt). See docs/pipeline.md."""
