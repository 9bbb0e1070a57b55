"""Re-embedding stored crops with a new model: progress, cancel + resume, identities without crops."""

from __future__ import annotations

import numpy as np

from faceapp.core.progress import CancelToken, run_to_completion
from faceapp.services.enrollment import EnrollmentService
from faceapp.services.gallery import Gallery, model_spec
from faceapp.services.reembed import reembed_gallery
from faceapp.storage import NewIdentity


def test_reembed_creates_new_model_templates_resumably(store, tiny_embedder, other_embedder, pipeline, att) -> None:
    service = EnrollmentService(store, tiny_embedder, pipeline=pipeline, duplicate_check=False)
    for subject in (1, 2, 3):
        run_to_completion(service.enroll(NewIdentity(f"s{subject}"), [att / f"s{subject}" / f"{i}.pgm" for i in (1, 2)]))
    no_crops = EnrollmentService(store, tiny_embedder, pipeline=pipeline, store_crops=False, duplicate_check=False)
    run_to_completion(no_crops.enroll(NewIdentity("legacy"), [att / "s4" / "1.pgm"]))

    cancel = CancelToken()
    job = reembed_gallery(store, other_embedder, batch_size=2, cancel=cancel)
    first = next(job)
    assert (first.stage, first.done, first.total) == ("reembed", 0, 6)
    next(job)                                  # one batch of 2 committed
    cancel.cancel()
    partial = run_to_completion(job)
    assert partial.cancelled and partial.embedded == 2 and partial.remaining == 4

    events = []
    report = run_to_completion(reembed_gallery(store, other_embedder, batch_size=4), events.append)
    assert not report.cancelled and report.embedded == 4 and report.remaining == 0
    assert report.without_crops == [(store.identities.get("legacy").id, "legacy")]
    assert events[-1].done == 4
    new_id = other_embedder.model_id
    for subject in (1, 2, 3):
        templates = store.templates.for_identity(f"s{subject}", new_id)
        assert len(templates) == 2 and templates[0].dim == 24
        crop = store.templates.crops(f"s{subject}")[0]
        expected = other_embedder.embed([crop.image()])[0]
        assert np.allclose(templates[0].embedding, expected, atol=1e-5)
    assert store.identities.get("s1").template_counts == {tiny_embedder.model_id: 2, new_id: 2}
    gallery = Gallery(store, model_spec(other_embedder))
    assert gallery.status().searchable == 3 and gallery.status().need_reembedding == 0
    assert [e.decision for e in store.audit.query(operation="reembed")] == ["cancelled", "done"]
    assert run_to_completion(reembed_gallery(store, other_embedder)).embedded == 0     # nothing left
