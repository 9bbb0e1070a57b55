"""Dataset summary for the Trainer tab: counts, images-per-identity histogram, alignment cache status."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceapp.core.progress import run_to_completion
from faceapp.data.cache import align_images
from faceapp.data.datasets import DatasetSpec, scan_dataset
from faceapp.services.dataset_summary import summarize_dataset


def test_summary_counts_and_cache_state(att: Path, celeba: Path, mediapipe_models: Path, tmp_path: Path) -> None:
    spec = DatasetSpec(path=str(att), identities="s1-s3", max_per_identity=4)
    summary = summarize_dataset(spec, cache_root=tmp_path)
    assert (summary.identities, summary.images, summary.per_identity) == (3, 12, [4, 4, 4])
    assert summary.cache_state == "missing" and "not built yet" in summary.describe()
    listing = scan_dataset(spec)
    job = align_images(listing.items, name=listing.name, cache_root=tmp_path, chunk=4)
    next(job), next(job)                                      # start + first chunk of 4, then stop
    job.close()
    assert summarize_dataset(spec, cache_root=tmp_path).aligned == 4
    assert summarize_dataset(spec, cache_root=tmp_path).cache_state == "partial"
    run_to_completion(align_images(listing.items, name=listing.name, cache_root=tmp_path))
    done = summarize_dataset(spec, cache_root=tmp_path)
    assert done.cache_state == "complete" and done.aligned == 12 and 10 <= done.aligned_ok <= 12
    assert done.cache_folder is not None and done.cache_folder.parent == tmp_path

    varied = summarize_dataset(DatasetSpec(path=str(celeba)), cache_root=tmp_path)
    edges, counts = varied.histogram(bins=10)
    assert counts.sum() == varied.identities == 299 and varied.images == 6300
    assert edges[0] < min(varied.per_identity) and edges[-1] > max(varied.per_identity)
    assert np.all(np.diff(edges) == edges[1] - edges[0])
