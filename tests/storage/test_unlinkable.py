"""Unlinkable templates (faceapp.storage.unlinkable): a secret per-gallery orthogonal transform applied before
storage and to probes. Scores inside a gallery are those of the plain vectors; the same person's stored
templates in two galleries do not match; exports carry plain templates; a full rotation renews the transform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceapp.core.errors import GalleryKeyError
from faceapp.services.gallery import Gallery
from faceapp.storage import NewIdentity, Store
from faceapp.storage.keys import KeyOptions
from faceapp.storage.maintenance import check, rotate_key
from faceapp.storage.transfer import export_gallery, import_gallery
from faceapp.storage.unlinkable import orthogonal_matrix


def keys(tmp_path: Path, **extra) -> KeyOptions:
    return KeyOptions(key_dir=tmp_path / "keys", use_keyring=False, **extra)


def stored_matrix(store: Store, model) -> np.ndarray:
    return store.templates.gallery_rows(model.model_id, model.embedding_dim).embeddings


def test_orthogonal_matrix_is_orthogonal_and_reproducible() -> None:
    q = orthogonal_matrix(b"\x01" * 32, 64)
    np.testing.assert_allclose(q @ q.T, np.eye(64), atol=1e-12)
    assert np.array_equal(q, orthogonal_matrix(b"\x01" * 32, 64))
    assert not np.allclose(q, orthogonal_matrix(b"\x02" * 32, 64))


def test_scores_inside_a_gallery_are_unchanged_and_galleries_do_not_link(tmp_path: Path, make_samples, model) -> None:
    people = {f"p{i}": make_samples(3, seed=10 + i) for i in range(4)}
    probe = people["p2"][0].embedding + 0.05 * make_samples(1, seed=99)[0].embedding
    scores = {}
    stored = {}
    for name, options in (("plain", keys(tmp_path)), ("a", keys(tmp_path, unlinkable=True)),
                          ("b", keys(tmp_path, unlinkable=True))):
        with Store(tmp_path / f"{name}.db", keys=options) as store:
            for person, samples in people.items():
                store.templates.enroll(NewIdentity(person), samples, model)
            assert check(store).encryption["unlinkable"] is (name != "plain")
            gallery = Gallery(store, model, operator="t")
            decision = gallery.identify(probe, top_k=4)
            scores[name] = [(c.name, c.score) for c in decision.candidates]
            scores[name, "verify"] = gallery.verify("p2", probe).score
            stored[name] = stored_matrix(store, model)
    for name in ("a", "b"):
        assert [n for n, _ in scores[name]] == [n for n, _ in scores["plain"]]
        np.testing.assert_allclose([s for _, s in scores[name]], [s for _, s in scores["plain"]], atol=1e-5)
        assert scores[name, "verify"] == pytest.approx(scores["plain", "verify"], abs=1e-5)
        with Store(tmp_path / "a.db", keys=keys(tmp_path)) as store:      # records carry the model's own vectors
            np.testing.assert_allclose(store.templates.for_identity("p1")[0].embedding, people["p1"][0].embedding,
                                       atol=1e-6)
    same_plain = np.sum(stored["plain"] * stored["plain"], axis=1)          # 1: a template against itself
    same_ab = np.sum(stored["a"] * stored["b"], axis=1)                     # the same template, two galleries
    assert np.allclose(same_plain, 1, atol=1e-5) and np.abs(same_ab).max() < 0.9 and abs(same_ab.mean()) < 0.3


def test_export_is_plain_and_import_applies_the_target_transform(tmp_path: Path, make_samples, model) -> None:
    samples = make_samples(2, seed=3)
    with Store(tmp_path / "a.db", keys=keys(tmp_path, unlinkable=True)) as source:
        source.templates.enroll(NewIdentity("Ada"), samples, model)
        export_gallery(source, tmp_path / "a.zip")
    with Store(tmp_path / "b.db", keys=keys(tmp_path, unlinkable=True)) as target:
        import_gallery(target, tmp_path / "a.zip")
        decision = Gallery(target, model, operator="t").verify("Ada", samples[1].embedding)
        assert decision.score == pytest.approx(1.0, abs=1e-5)
        assert not np.allclose(stored_matrix(target, model), np.stack([s.embedding for s in samples]), atol=1e-3)
    import zipfile

    with zipfile.ZipFile(tmp_path / "a.zip") as archive:            # the archive holds the model's own vectors
        exported = [n for n in archive.namelist() if n.endswith(".npy")]
        with archive.open(exported[0]) as handle:
            np.testing.assert_allclose(np.load(handle), np.stack([s.embedding for s in samples]), atol=1e-6)


def test_full_rotation_switches_and_renews_the_transform(tmp_path: Path, make_samples, model) -> None:
    samples = make_samples(3, seed=5)
    with Store(tmp_path / "g.db", keys=keys(tmp_path)) as store:
        store.templates.enroll(NewIdentity("Ada"), samples, model)
        plain = stored_matrix(store, model)
        with pytest.raises(GalleryKeyError, match="--full"):
            rotate_key(store, full=False, unlinkable=True)
        assert rotate_key(store, full=True, unlinkable=True)["unlinkable"] is True
        first = stored_matrix(store, model)
        rotate_key(store, full=True)                                     # renewed: a new matrix
        second = stored_matrix(store, model)
        assert not np.allclose(first, plain, atol=1e-3) and not np.allclose(second, first, atol=1e-3)
        np.testing.assert_allclose(first @ first.T, plain @ plain.T, atol=1e-5)    # same scores throughout
        np.testing.assert_allclose(second @ second.T, plain @ plain.T, atol=1e-5)
        assert Gallery(store, model, operator="t").verify("Ada", samples[0].embedding).score == pytest.approx(1, abs=1e-5)
        rotate_key(store, full=True, unlinkable=False)
        np.testing.assert_allclose(stored_matrix(store, model), plain, atol=1e-6)
