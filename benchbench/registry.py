"""Name -> entry registries for models (and, later, datasets), filled by decorators next to definitions."""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(ValueError):
    """An unknown registry name; the message suggests the closest registered names."""


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (`benchbench {self.kind}s` lists them)"

    def __contains__(self, name: str) -> bool:
        return name in self._entries


C = TypeVar("C")


def configure(config_cls: type[C], defaults: dict[str, Any], overrides: dict[str, Any], what: str) -> C:
    """Builds a config dataclass from a variant's defaults plus user overrides.

    Unknown override keys are a ValueError naming the key and the valid ones, so a typo in a study file
    or a `--set` never silently trains the default model.
    """
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"{what} has no option {unknown[0]!r}; valid options: {', '.join(sorted(fields))}")
    return config_cls(**{**defaults, **overrides})


def check(condition: bool, message: str) -> None:
    """Raises ValueError(message) unless condition holds: the one way models reject invalid configurations."""
    if not condition:
        raise ValueError(message)

