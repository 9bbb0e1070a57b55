"""Knowledge distillation terms: the student's embeddings pulled towards a fixed teacher's.

A distiller is an ``nn.Module`` taking ``(student (N, Ds) raw backbone output, teacher (N, Dt))`` and
returning ``(scalar, {term name: detached value})``; it is added to any loss of the zoo with a weight, so
the training objective is ``main loss + w_embed * embed term + w_rel * relational term``
(``Distillation`` holds the weighted set). Like the zoo's losses, distillers compute in float32 with
autocast off and declare typed ``HyperParameter``s (GUI form fields, ``--distill-param k=v``).

- ``embed``: embedding regression, ``1 - cos(P s, t)`` per image, with a learned linear projection ``P``
  (student_dim -> teacher_dim) when the sizes differ, none when they match.
- ``relational``: the student's batch cosine-similarity matrix matches the teacher's (off-diagonal MSE or
  smooth-L1): only the geometry between faces is transferred, so no projection is needed.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceapp.core.registry import Registry
from faceapp.nn.losses.base import HyperParameter, LossConfigError, class_registrar, resolve_spec

TERM_PREFIX = "distill_"


class Distiller(nn.Module):
    """Base of a distillation term: checks the inputs, runs ``compute`` in float32, returns (value, terms)."""

    registry_name: ClassVar[str] = ""
    hyperparameters: ClassVar[list[HyperParameter]] = []

    def __init__(self, student_dim: int, teacher_dim: int, **hparams: Any) -> None:
        super().__init__()
        owner = self.owner()
        for what, value in (("student_dim", student_dim), ("teacher_dim", teacher_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LossConfigError(f"{owner}: {what} must be a positive integer, got {value!r}")
        self.student_dim = student_dim
        self.teacher_dim = teacher_dim
        self.hparams: dict[str, Any] = resolve_distill_hparams(type(self), hparams)

    @classmethod
    def owner(cls) -> str:
        return f"distiller {cls.registry_name or cls.__name__}"

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """The term's scalar value for a batch (the teacher side never receives gradients)."""
        owner = self.owner()
        if student.dim() != 2 or student.shape[1] != self.student_dim:
            raise LossConfigError(f"{owner}: student embeddings must have shape (N, {self.student_dim}), "
                                  f"got {tuple(student.shape)}")
        if teacher.dim() != 2 or teacher.shape != (student.shape[0], self.teacher_dim):
            raise LossConfigError(f"{owner}: teacher embeddings must have shape ({student.shape[0]}, "
                                  f"{self.teacher_dim}), got {tuple(teacher.shape)}")
        with torch.autocast(device_type=student.device.type, enabled=False):
            return self.compute(student.float(), teacher.detach().float())

    def compute(self, student: Tensor, teacher: Tensor) -> Tensor:
        raise NotImplementedError


def resolve_distill_hparams(cls: type[Distiller], given: dict[str, Any], *, defaults: bool = True) -> dict[str, Any]:
    """Defaults of ``cls.hyperparameters`` overridden by ``given`` (converted, range-checked)."""
    return resolve_spec(cls.hyperparameters, given, cls.owner(), defaults=defaults)


DISTILLERS: Registry[Distiller] = Registry("distiller")
register_distiller = class_registrar(DISTILLERS)


@register_distiller("embed")
class EmbeddingDistillation(Distiller):
    """Embedding regression to the teacher: ``mean_i (1 - cos(P s_i, t_i))``, P a learned linear map
    student_dim -> teacher_dim when the sizes differ (no parameters when they match).

    The cosine form matches what a face embedding is used for (angles on the hypersphere) and ignores the
    student's feature norm, which margin losses drive on their own. The projection is FitNets' learned
    "regressor" between unequal feature spaces; it trains with the student (weight decay applies) and is
    saved in checkpoints, but not in the exported model, which stays the student alone.
    References: Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015 (regression through a learned
    projection); Duong et al., "ShrinkTeaNet: Million-scale Lightweight Face Recognition via Shrinking
    Teacher-Student Networks", 2019 (angular distillation, 1 - cosine between student and teacher features).
    """

    hyperparameters: ClassVar[list[HyperParameter]] = []

    def __init__(self, student_dim: int, teacher_dim: int, **hparams: Any) -> None:
        super().__init__(student_dim, teacher_dim, **hparams)
        self.projection: nn.Module = (nn.Identity() if student_dim == teacher_dim
                                      else nn.Linear(student_dim, teacher_dim, bias=False))

    def compute(self, student: Tensor, teacher: Tensor) -> Tensor:
        projected = self.projection(student)
        return (1.0 - F.cosine_similarity(projected, teacher, dim=1, eps=1e-8)).mean()


def cosine_matrix(x: Tensor) -> Tensor:
    """(N, N) cosine similarities of the rows of ``x``."""
    unit = F.normalize(x, dim=1, eps=1e-8)
    return unit @ unit.t()


@register_distiller("relational")
class RelationalDistillation(Distiller):
    """Relational distillation: the student's batch cosine-similarity matrix matches the teacher's.

    ``L = mean_{i != j} l(cos(s_i, s_j) - cos(t_i, t_j))`` with ``l`` the square (MSE) or smooth-L1 (Huber,
    threshold ``beta``); the diagonal (always 1) is left out. Only the relations between faces are
    transferred, so the student keeps its own embedding size and needs no projection; a batch of one image
    has no pair and gives a zero that stays in the graph.
    References: Park et al., "Relational Knowledge Distillation", CVPR 2019 (distance-wise potential with a
    Huber loss); Tung and Mori, "Similarity-Preserving Knowledge Distillation", ICCV 2019 (matching
    in-batch similarity matrices).
    """

    hyperparameters: ClassVar[list[HyperParameter]] = [
        HyperParameter("criterion", "mse", help="how differences of similarities are penalised",
                       choices=("mse", "smooth_l1")),
        HyperParameter("beta", 0.1, 1e-6, 2.0, "smooth-L1 threshold between its quadratic and linear parts"),
        HyperParameter("center", False, help="subtract each side's batch mean embedding before the cosines: "
                                             "for teachers whose strangers are far from orthogonal (dlib: "
                                             "impostor cosine ~0.82), so the student is not pulled into a cone"),
    ]

    def compute(self, student: Tensor, teacher: Tensor) -> Tensor:
        n = student.shape[0]
        if n < 2:
            return student.sum() * 0.0
        if self.hparams["center"]:
            student = F.normalize(student, dim=1)
            teacher = F.normalize(teacher, dim=1)
            student, teacher = student - student.mean(0, keepdim=True), teacher - teacher.mean(0, keepdim=True)
        off = ~torch.eye(n, dtype=torch.bool, device=student.device)
        s, t = cosine_matrix(student)[off], cosine_matrix(teacher)[off]
        if self.hparams["criterion"] == "smooth_l1":
            return F.smooth_l1_loss(s, t, beta=self.hparams["beta"])
        return F.mse_loss(s, t)


def distiller_class(kind: str) -> type[Distiller]:
    """The class registered as ``kind``; LossConfigError listing the known names otherwise."""
    try:
        return DISTILLERS.get(kind).factory  # type: ignore[return-value]
    except KeyError as error:
        raise LossConfigError(str(error.args[0])) from None


def create_distiller(kind: str, student_dim: int, teacher_dim: int, **hparams: Any) -> Distiller:
    """Build the distiller ``kind`` ("embed", "relational") between the two embedding sizes."""
    return distiller_class(kind)(student_dim, teacher_dim, **hparams)


def describe_distillers() -> list[dict[str, Any]]:
    """Every distiller as a JSON-friendly dict (name, summary, hyper-parameters) for the CLI and the GUI."""
    return [{"name": name, "summary": summary,
             "hyperparameters": [h.to_dict() for h in distiller_class(name).hyperparameters]}
            for name, summary in DISTILLERS.describe().items()]


def distill_form_fields(weights: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The distillation settings as form fields (``HyperParameter.to_dict()``): each distiller's weight
    (``<kind>.weight``, default from ``weights``) followed by its hyper-parameters (``<kind>.<name>``)."""
    weights = weights or {}
    fields: list[dict[str, Any]] = []
    for kind, summary in DISTILLERS.describe().items():
        fields.append(HyperParameter(f"{kind}.weight", float(weights.get(kind, 0.0)), 0.0, 1000.0,
                                     f"weight of the term (0 = off): {summary}").to_dict())
        fields += [{**h.to_dict(), "name": f"{kind}.{h.name}"} for h in distiller_class(kind).hyperparameters]
    return fields


def split_distill_params(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"relational.criterion": "smooth_l1"}`` (flat, as in configs and ``--distill-param``) ->
    ``{"relational": {"criterion": "smooth_l1"}}``; LossConfigError for a key without a known distiller."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in params.items():
        kind, sep, name = str(key).partition(".")
        if not sep or not name:
            raise LossConfigError(f"distillation parameter {key!r}: expected DISTILLER.NAME, e.g. "
                                  "relational.criterion")
        distiller_class(kind)
        out.setdefault(kind, {})[name] = value
    return out


def parse_distill_params(items: Sequence[str]) -> dict[str, Any]:
    """``["relational.criterion=smooth_l1"]`` (CLI ``--distill-param``) -> converted, range-checked flat dict."""
    given: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LossConfigError(f"--distill-param {item!r}: expected DISTILLER.NAME=VALUE, e.g. "
                                  "relational.criterion=smooth_l1")
        given[key.strip()] = value.strip()
    out: dict[str, Any] = {}
    for kind, values in split_distill_params(given).items():
        resolved = resolve_distill_hparams(distiller_class(kind), values, defaults=False)
        out.update({f"{kind}.{k}": v for k, v in resolved.items()})
    return out


class Distillation(nn.Module):
    """The weighted distillation terms of a run: ``forward(student, teacher) -> (total, terms)``.

    ``weights`` maps a distiller name to its weight (a zero weight builds nothing); ``params`` holds the
    distillers' hyper-parameters, flat (``{"relational.criterion": "mse"}``). ``terms`` are detached
    tensors named ``distill_<kind>`` (the trainer logs them as ``loss/distill_<kind>``). The total is
    what the trainer adds to the zoo loss.
    """

    def __init__(self, student_dim: int, teacher_dim: int, weights: dict[str, float],
                 params: dict[str, Any] | None = None) -> None:
        super().__init__()
        per_kind = split_distill_params(dict(params or {}))
        self.weights: dict[str, float] = {}
        terms = {}
        for kind, weight in weights.items():
            distiller_class(kind)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight < float("inf"):
                raise LossConfigError(f"distillation weight of {kind!r} must be a number >= 0, got {weight!r}")
            if weight > 0:
                self.weights[kind] = float(weight)
                terms[kind] = create_distiller(kind, student_dim, teacher_dim, **per_kind.get(kind, {}))
        unused = sorted(set(per_kind) - set(terms))
        if unused:
            raise LossConfigError(f"distillation parameters given for {', '.join(unused)}, whose weight is 0")
        if not terms:
            raise LossConfigError("distillation needs a positive weight for at least one of "
                                  f"{', '.join(DISTILLERS.names())}")
        self.terms = nn.ModuleDict(terms)
        self.student_dim, self.teacher_dim = student_dim, teacher_dim

    @property
    def hparams(self) -> dict[str, Any]:
        """Every weight and hyper-parameter, flat (model cards, configs)."""
        out: dict[str, Any] = {f"{kind}.weight": w for kind, w in self.weights.items()}
        for kind, term in self.terms.items():
            out.update({f"{kind}.{k}": v for k, v in term.hparams.items()})
        return out

    def forward(self, student: Tensor, teacher: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        total = student.new_zeros((), dtype=torch.float32)
        terms: dict[str, Tensor] = {}
        for kind, term in self.terms.items():
            value = term(student, teacher)
            terms[f"{TERM_PREFIX}{kind}"] = value.detach()
            total = total + self.weights[kind] * value
        return total, terms
