"""Activating a model folder: the gallery's stored crops are re-embedded with it (cancellable, resumable)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceapp.core.errors import CancelledError
from faceapp.core.progress import CancelToken, run_to_completion
from faceapp.embedding import Embedder
from faceapp.services.activation import activate_model
from tests.services.analyst_data import enrol_att, save_untrained_model


def test_activation_reembeds_the_gallery(store, tiny_embedder: Embedder, att: Path, mediapipe_models: Path,
                                         tmp_path: Path) -> None:
    enrol_att(store, tiny_embedder, att, range(1, 4), per_subject=2)
    folder = save_untrained_model(tmp_path / "next", dim=16)

    cancel = CancelToken()
    job = activate_model(store, folder, device="cpu", batch_size=2, cancel=cancel)
    events = [next(job), next(job), next(job)]             # loading, re-embed start, first batch
    assert events[0].stage == "activate" and (events[1].stage, events[1].total) == ("reembed", 6)
    cancel.cancel()
    with pytest.raises(CancelledError, match="previous model stays active"):
        run_to_completion(job)

    result = run_to_completion(activate_model(store, folder, device="cpu"))
    new_id = result.embedder.model_id
    assert result.embedder.dim == 16 and result.report.embedded == 4 and result.report.remaining == 0
    assert "is active" in result.summary()
    for name in ("s1", "s2", "s3"):
        templates = store.templates.for_identity(name, new_id)
        crop = store.templates.crops(name)[0]
        assert len(templates) == 2
        assert np.allclose(templates[0].embedding, result.embedder.embed([crop.image()])[0], atol=1e-5)
    assert [e.model_id for e in store.audit.query(operation="activate-model")] == [new_id]
    assert run_to_completion(activate_model(None, folder, device="cpu")).report is None
