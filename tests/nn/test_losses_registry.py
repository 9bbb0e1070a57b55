"""The loss registry contract used by the trainer, the CLI (`faceapp losses`, `--loss-param k=v`) and the GUI form."""

from __future__ import annotations

import pytest
import torch

from faceapp.core.errors import ExitCode, FaceAppError
from faceapp.nn.losses import (
    FaceLoss,
    LossConfigError,
    create_loss,
    describe_losses,
    list_losses,
    loss_class,
    parse_loss_params,
)

EXPECTED = {
    "softmax", "modified_softmax", "l2_softmax", "sphereface", "cosface", "arcface", "center", "ring",
    "contrastive", "double_margin_contrastive", "deepid2", "siamese", "triplet",
}
CLASSIFIERS = {"softmax", "modified_softmax", "l2_softmax", "sphereface", "cosface", "arcface", "center", "ring", "deepid2"}
PK = {"contrastive", "double_margin_contrastive", "deepid2", "siamese", "triplet"}


def test_every_loss_is_registered_with_a_summary_formula_and_reference():
    summaries = list_losses()
    assert set(summaries) == EXPECTED
    for name, summary in summaries.items():
        cls = loss_class(name)
        assert issubclass(cls, FaceLoss) and cls.registry_name == name
        assert summary and len(summary) < 120, name
        doc = cls.__doc__ or ""
        assert "Reference" in doc and "L = " in doc, f"{name}: docstring must state formula and paper"


def test_flags_say_which_losses_own_a_classifier_and_need_pk_batches():
    for name in EXPECTED:
        cls = loss_class(name)
        assert cls.needs_classes == (name in CLASSIFIERS), name
        assert cls.requires_pk_sampler == (name in PK), name


def test_hyperparameter_defaults_are_in_range_and_described():
    for name in EXPECTED:
        for h in loss_class(name).hyperparameters:
            assert h.help, f"{name}.{h.name} has no help text"
            assert h.coerce(h.default, name) == h.default
        loss = create_loss(name, embedding_dim=8, num_classes=4)
        assert loss.hparams == {h.name: h.default for h in loss_class(name).hyperparameters}


def test_create_loss_converts_text_values_and_rejects_bad_ones():
    loss = create_loss("arcface", embedding_dim=8, num_classes=4, m="0.3", s="32", easy_margin="true")
    assert loss.hparams == {"m": 0.3, "s": 32.0, "easy_margin": True}
    assert create_loss("sphereface", embedding_dim=8, num_classes=4, m="3").hparams["m"] == 3
    with pytest.raises(LossConfigError, match=r"arcface: unknown hyper-parameter\(s\) margin; known: s, m, easy_margin"):
        create_loss("arcface", embedding_dim=8, num_classes=4, margin=0.5)
    with pytest.raises(LossConfigError, match=r"'m' = 2.0 is outside \[0.0, 1.5\]"):
        create_loss("arcface", embedding_dim=8, num_classes=4, m=2.0)
    with pytest.raises(LossConfigError, match="'m' must be a int, got '2.5'"):
        create_loss("sphereface", embedding_dim=8, num_classes=4, m="2.5")
    with pytest.raises(LossConfigError, match="'miner' must be one of all, batch_all, batch_hard, semi_hard"):
        create_loss("triplet", embedding_dim=8, num_classes=0, miner="hardest")
    with pytest.raises(LossConfigError, match="unknown loss 'arcfase'; known: arcface"):
        create_loss("arcfase", embedding_dim=8, num_classes=4)
    with pytest.raises(LossConfigError, match="cosface: needs num_classes >= 2"):
        create_loss("cosface", embedding_dim=8, num_classes=1)
    error = pytest.raises(LossConfigError, create_loss, "softmax", embedding_dim=0, num_classes=4).value
    assert isinstance(error, FaceAppError) and error.exit_code == ExitCode.USAGE


def test_parse_loss_params_for_the_cli():
    assert parse_loss_params("cosface", ["m=0.4", " s = 30 "]) == {"m": 0.4, "s": 30.0}
    assert parse_loss_params("triplet", ["miner=batch_hard", "squared=no"]) == {"miner": "batch_hard", "squared": False}
    with pytest.raises(LossConfigError, match="expected NAME=VALUE"):
        parse_loss_params("cosface", ["m"])
    with pytest.raises(LossConfigError, match="unknown hyper-parameter"):
        parse_loss_params("softmax", ["m=1"])


def test_describe_losses_is_json_ready():
    import json

    described = {d["name"]: d for d in json.loads(json.dumps(describe_losses()))}
    assert set(described) == EXPECTED
    triplet = described["triplet"]
    assert triplet["requires_pk_sampler"] and not triplet["needs_classes"]
    miner = next(h for h in triplet["hyperparameters"] if h["name"] == "miner")
    assert miner == {"name": "miner", "type": "str", "default": "semi_hard", "min": None, "max": None,
                     "help": miner["help"], "choices": ["all", "batch_all", "batch_hard", "semi_hard"]}
    m = next(h for h in described["arcface"]["hyperparameters"] if h["name"] == "m")
    assert (m["type"], m["default"], m["min"], m["max"]) == ("float", 0.5, 0.0, 1.5)


def test_bad_inputs_are_named():
    loss = create_loss("cosface", embedding_dim=8, num_classes=4)
    with pytest.raises(LossConfigError, match=r"embeddings must have shape \(N, 8\), got \(3, 6\)"):
        loss(torch.randn(3, 6), torch.zeros(3, dtype=torch.long))
    with pytest.raises(LossConfigError, match=r"labels must have shape \(3,\)"):
        loss(torch.randn(3, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(LossConfigError, match=r"labels must lie in \[0, 3\], got values in \[0, 4\]"):
        loss(torch.randn(3, 8), torch.tensor([0, 4, 1]))
    with pytest.raises(LossConfigError, match="labels must be integers"):
        loss(torch.randn(3, 8), torch.zeros(3))


def test_docs_table_lists_every_loss_with_its_hyperparameters_and_defaults():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "losses.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line for line in doc.splitlines() if line.startswith("| `")}
    for name in EXPECTED:
        assert name in rows, f"docs/losses.md has no table row for {name}"
        for h in loss_class(name).hyperparameters:
            assert f"`{h.name}`" in rows[name] and str(h.default) in rows[name], f"{name}.{h.name}={h.default} not documented"
