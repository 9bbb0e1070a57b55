"""AT&T open set on real faces through the real services: s1-s20 enrolled from 5 images each, probed
with their other 5 images and with s21-s40 as strangers, using the active embedding model.

The active model is used when it is a trained one (then rank-1 must be good); until a trained default
exists the test runs with a small untrained network (fast: its numbers mean nothing either way) and
checks the mechanics only: counts, decisions that agree with the threshold, one audit row per decision.
``scripts/att_open_set.py`` measures the numbers of the active model for the note.
"""

from __future__ import annotations

from faceapp.core.progress import run_to_completion
from faceapp.embedding import Embedder
from faceapp.services.open_set import att_protocol, run_open_set


def test_att_open_set_mechanics(store, pipeline, att, tiny_embedder) -> None:
    active = Embedder.load()
    embedder = active if active.trained else tiny_embedder
    protocol = att_protocol(att)
    assert len(protocol.gallery) == 20 and len(protocol.probes) == 100 + 200
    events = []
    report = run_to_completion(run_open_set(store, embedder, pipeline, protocol), events.append)
    assert events[-1].done == events[-1].total == 320

    assert report.enrolled_identities == 20 and report.enrol_failed == []
    assert report.enrolled_templates + report.enrol_rejected == 100
    assert report.enrolled_templates >= 90                      # AT&T faces are frontal and clean
    identities = store.identities.list()
    assert sum(i.template_count for i in identities) == report.enrolled_templates
    assert all(i.crop_count == i.template_count for i in identities)
    assert (report.genuine_probes, report.stranger_probes) == (100, 200)

    decisions = store.audit.query(operation="identify")
    answered = report.genuine_probes + report.stranger_probes - report.probe_failures
    assert len(decisions) == answered == len(report.genuine_scores) + len(report.stranger_scores)
    threshold = report.thresholds["identify"]
    for event in decisions:
        assert event.threshold == threshold and event.model_id == embedder.model_id
        assert (event.decision == "unknown") == (event.score < threshold)
        assert (event.identity_id is None) == (event.decision == "unknown")
    assert report.strangers_unknown == sum(s < threshold for s in report.stranger_scores)
    assert report.identified <= report.rank1_hits <= report.genuine_probes
    assert 0.0 <= report.rank1_rate <= 1.0 and 0.0 <= report.stranger_rejection_rate <= 1.0
    if embedder.trained:                                         # a real recogniser must do its job
        assert report.rank1_rate >= 0.8
    print(f"\nAT&T open set with {embedder.model_id} ({'trained' if embedder.trained else 'UNTRAINED'}): "
          f"rank-1 {report.rank1_rate}, identified at threshold {report.identification_rate}, strangers "
          f"unknown {report.stranger_rejection_rate} (identify threshold {threshold}, "
          f"{report.thresholds['source']})")
