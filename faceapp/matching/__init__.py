"""Matching: an exact in-memory gallery index per model, verify (1:1) and identify (1:N, open set).

Pure numpy; the services layer keeps an index in sync with the store (``faceapp.services.gallery``).
"""

from faceapp.matching.index import GalleryIndex, normalize_rows
from faceapp.matching.matcher import (
    DEFAULT_AMBIGUITY_MARGIN, POLICIES, Matcher, combine, decide_identify, decide_verify, redecide,
)
from faceapp.matching.thresholds import Thresholds, from_model_card, resolve_thresholds

__all__ = ["DEFAULT_AMBIGUITY_MARGIN", "GalleryIndex", "Matcher", "POLICIES", "Thresholds", "combine", "decide_identify", "decide_verify",
           "from_model_card", "normalize_rows", "redecide", "resolve_thresholds"]
