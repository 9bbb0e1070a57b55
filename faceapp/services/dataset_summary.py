"""What a training dataset folder holds, for the Trainer tab: identities, images per identity and whether
the alignment cache already has it (reads no pixels, so it is quick even for thousands of images). A pack
file of aligned crops (``faceapp.data.pack``) is summarised from its names alone: it needs no alignment."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.data.cache import AlignSettings, cache_folder
from faceapp.data.datasets import DatasetSpec, scan_dataset
from faceapp.data.pack import is_pack, scan_pack


@dataclass
class DatasetSummary:
    """Counts of one dataset folder and its alignment cache status."""

    name: str
    root: Path
    layout: str
    identities: int
    images: int
    per_identity: list[int] = field(default_factory=list)     # images of each identity, in identity order
    cache_state: str = "missing"                               # "complete", "partial", "missing" or "packed"
    cache_folder: Path | None = None
    aligned: int = 0                                           # images processed into the cache so far
    aligned_ok: int = 0                                        # of which with a face (complete caches only)
    cache_info: dict[str, Any] = field(default_factory=dict)

    def histogram(self, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """(bin edges, identity counts) of the images-per-identity distribution (integer-aligned bins)."""
        counts = np.asarray(self.per_identity or [0])
        high = int(counts.max())
        width = max(1, int(np.ceil(high / bins)))
        edges = np.arange(0, high + width, width) + 0.5            # bins (0.5, w + 0.5], ... cover 1..high
        hist, edges = np.histogram(counts, bins=edges)
        return edges, hist

    def describe(self) -> str:
        """Lines for the Trainer tab."""
        counts = np.asarray(self.per_identity or [0])
        lines = [f"{self.name} ({self.layout} layout): {self.identities} identities, {self.images} images "
                 f"({counts.min()}-{counts.max()} per identity, median {np.median(counts):g})"]
        if self.cache_state == "packed":
            lines.append("packed crops: aligned when they were packed, nothing to align here")
        elif self.cache_state == "complete":
            lines.append(f"alignment cache: complete, {self.aligned_ok} of {self.images} images with a face")
        elif self.cache_state == "partial":
            lines.append(f"alignment cache: {self.aligned} of {self.images} images aligned; training resumes it")
        else:
            lines.append(f"alignment cache: not built yet; training first aligns all {self.images} images "
                         "(MediaPipe, once)")
        return "\n".join(lines)


def summarize_dataset(spec: DatasetSpec, cache_root: Path | None = None) -> DatasetSummary:
    """Scan ``spec``'s folder and look up its alignment cache (the one training would use)."""
    if is_pack(spec):
        pack = scan_pack(spec)
        counts = pack.counts()
        return DatasetSummary(name=pack.name, root=pack.root, layout="pack", identities=len(counts),
                              images=int(pack.rows.size), per_identity=[counts[k] for k in sorted(counts)],
                              cache_state="packed", aligned=int(pack.rows.size), aligned_ok=int(pack.rows.size))
    listing = scan_dataset(spec)
    counts = listing.counts()
    folder = cache_folder(listing.items, listing.name, AlignSettings(pad=spec.pad), cache_root)
    summary = DatasetSummary(name=listing.name, root=listing.root, layout=listing.layout, identities=len(counts),
                             images=len(listing.items), per_identity=[counts[k] for k in sorted(counts)],
                             cache_folder=folder)
    complete = folder / "complete.json"
    if complete.is_file():
        info = json.loads(complete.read_text())
        summary.cache_state, summary.aligned, summary.aligned_ok = "complete", int(info["n"]), int(info["n_ok"])
        summary.cache_info = info
    elif (folder / "manifest.jsonl").is_file():
        lines = (folder / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
        summary.cache_state, summary.aligned = "partial", len(lines)
    return summary
