"""The backbone registry: ``@register_backbone(name)``, ``create_backbone``, ``list_backbones``.

Every backbone maps a batch of aligned faces ``(N, 3, S, S)`` (RGB, ``(x/255 - 0.5) / 0.5``, S = its
``input_size``, 112 by default) to raw embeddings ``(N, embedding_dim)``. The output is NOT L2-normalised:
margin losses and the Embedder normalise themselves.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from faceapp.core.errors import IncompatibleError, NotFoundError
from faceapp.core.registry import Registry

BACKBONES: Registry[nn.Module] = Registry("backbone")


def register_backbone(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a backbone class or factory under ``name`` (first docstring line = summary)."""
    return BACKBONES.register(name)


def create_backbone(name: str, embedding_dim: int = 128, **kwargs: Any) -> nn.Module:
    """Build the backbone registered as ``name``.

    ``kwargs`` are the backbone's own options (``input_size``, ``width``, ``dropout``...). An unknown name
    raises NotFoundError listing the known ones; an unsupported option or value raises IncompatibleError
    naming it, so the CLI and the model loader can report it without a traceback.
    """
    _check_known(name)
    if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 1:
        raise IncompatibleError(f"backbone {name!r}: embedding_dim must be a positive integer, got {embedding_dim!r}")
    try:
        return BACKBONES.create(name, embedding_dim=embedding_dim, **kwargs)
    except TypeError as exc:  # unexpected keyword argument
        raise IncompatibleError(f"backbone {name!r}: {exc}") from exc
    except ValueError as exc:
        raise IncompatibleError(f"backbone {name!r}: {exc}") from exc


def list_backbones() -> dict[str, str]:
    """name -> one-line description (from the docstring), for CLI choices and GUI combo boxes."""
    return BACKBONES.describe()


def resolved_kwargs(name: str, **kwargs: Any) -> dict[str, Any]:
    """The backbone's own options with its defaults filled in (``embedding_dim``/``input_size`` excluded).

    Model folders record these, so a later change of a default never changes a saved architecture.
    """
    _check_known(name)
    signature = inspect.signature(BACKBONES.get(name).factory)
    try:
        bound = signature.bind_partial(**kwargs)
    except TypeError as exc:
        raise IncompatibleError(f"backbone {name!r}: {exc}") from exc
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items()
            if k not in ("embedding_dim", "input_size") and not k.startswith("_")
            and signature.parameters[k].kind is not inspect.Parameter.VAR_KEYWORD}


def _check_known(name: str) -> None:
    """NotFoundError listing the known backbones when ``name`` is not registered."""
    if name not in BACKBONES:
        known = ", ".join(BACKBONES.names()) or "none"
        raise NotFoundError(f"unknown backbone {name!r}; known backbones: {known}")


def check_input_size(input_size: int, *, multiple: int = 16, minimum: int = 32) -> int:
    """Validate a square input side for nets whose head needs a whole final feature map (GDC / FC)."""
    if isinstance(input_size, bool) or not isinstance(input_size, int):
        raise ValueError(f"input_size must be an integer, got {input_size!r}")
    if input_size < minimum or input_size % multiple:
        raise ValueError(f"input_size {input_size} is not supported: it must be a multiple of {multiple}, at least {minimum} (e.g. 112, 96, 64)")
    return input_size
