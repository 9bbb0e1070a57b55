"""Face data: dataset folders and packs, the alignment cache, labelled crops with an identity-disjoint
hold-out, and pair protocols aligned, embedded and scored (what the trainer, the Thresholds tab and
``faceapp eval`` share). Below ``faceapp.training``; imports vision, embedding, evaluation and core.

    from faceapp.core.progress import run_to_completion
    from faceapp.data import DatasetSpec, align_images, evaluate, scan_dataset
    listing = scan_dataset(DatasetSpec("../shared/datasets/att_faces", identities="s1-s5"))
    aligned = run_to_completion(align_images(listing.items, name=listing.name))
    report = run_to_completion(evaluate("models/default", "cfp", "../shared/datasets/cfp", cfp_protocol="FP"))

See docs/training.md.
"""

from faceapp.data.cache import AlignedSet, AlignSettings, align_images, open_cached
from faceapp.data.datasets import DatasetSpec, scan_dataset
from faceapp.data.evaluate import evaluate, evaluate_identification, evaluate_protocol

__all__ = [
    "AlignSettings", "AlignedSet", "DatasetSpec", "align_images", "evaluate", "evaluate_identification",
    "evaluate_protocol", "open_cached", "scan_dataset",
]
