"""Name -> factory registries (like timm's ``register_model``) for backbones, losses, miners, sources.

A registry fills the CLI's ``choices`` and the GUI's combo boxes via ``names()`` and ``describe()``.
``import_submodules`` is the one discovery-by-import helper: the CLI's commands, the bench's stages and the
GUI's pages register themselves when their package's modules are imported.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered factory and the one-line summary taken from its docstring."""

    name: str
    factory: Callable[..., T]
    summary: str


class Registry(Generic[T]):
    """A named collection of factories; ``create(name, **kwargs)`` builds one."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, *, summary: str | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering a class or function under ``name`` (lower-case, unique)."""

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            key = name.lower()
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            doc = inspect.getdoc(factory) or ""
            line = summary or (doc.strip().splitlines()[0] if doc.strip() else "")
            self._entries[key] = Entry(key, factory, line)
            return factory

        return decorate

    def get(self, name: str) -> Entry[T]:
        """The entry for ``name``; a KeyError message lists the known names."""
        key = name.lower()
        if key not in self._entries:
            known = ", ".join(sorted(self._entries)) or "none"
            raise KeyError(f"unknown {self.kind} {name!r}; known: {known}")
        return self._entries[key]

    def create(self, name: str, **kwargs: Any) -> T:
        """Build the object registered as ``name`` with keyword arguments."""
        return self.get(name).factory(**kwargs)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def describe(self) -> dict[str, str]:
        """name -> one-line summary, for ``faceapp losses`` and GUI tooltips."""
        return {n: self._entries[n].summary for n in self.names()}

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def import_submodules(package: str | ModuleType, *, prefix: str = "",
                      on_error: Callable[[str, Exception], None] | None = None) -> list[ModuleType]:
    """Import the modules of ``package`` whose names start with ``prefix``, in name order, so the
    registration decorators in them run; returns the modules imported.

    A module that fails to import raises, unless ``on_error(module_name, error)`` is given: then it is
    called and the module skipped (the GUI logs a broken page and keeps the others).
    """
    pkg = importlib.import_module(package) if isinstance(package, str) else package
    modules = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith(prefix):
            continue
        name = f"{pkg.__name__}.{info.name}"
        try:
            modules.append(importlib.import_module(name))
        except Exception as error:
            if on_error is None:
                raise
            on_error(name, error)
    return modules
