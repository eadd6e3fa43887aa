"""Name -> entry registries for models (and, later, datasets), filled by decorators next to definitions."""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import math
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

    Unknown override keys, values of the wrong type and impossible values are a ValueError naming the option,
    so a typo in a study file or a `--set` never silently trains the default model, nor crashes mid-build."""
    fields = {f.name: str(f.type) for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ValueError(f"{what} has no option {unknown[0]!r}; valid options: {', '.join(sorted(fields))}")
    for key, value in overrides.items():
        check_option(what, key, value, fields[key])
    return config_cls(**{**defaults, **overrides})


def check_option(what: str, key: str, value: Any, annotation: str) -> None:
    """One model option against its annotation ("int", "float | None", "tuple[int, ...]", ...). Counts and sizes
    (every int) are >= 1; rates (dropout, drop path, momentum) are in [0, 1); other floats are > 0."""
    if value is None:
        check("None" in annotation, f"{what}: option {key} must not be none")
        return
    kind = annotation.split(" | ")[0]
    if kind.startswith("tuple["):
        inner = kind[len("tuple["):-1].split(", ")
        check(isinstance(value, (tuple, list)) and (inner[-1] == "..." or len(value) == len(inner)),
              f"{what}: option {key} must be a list of {len(inner) if inner[-1] != '...' else 'any number of'} "
              f"{inner[0]}s, got {short(value)}")
        for item in value:
            check_option(what, key, item, inner[0])
        return
    if kind == "int":
        check(isinstance(value, int) and not isinstance(value, bool), f"{what}: option {key} must be an integer, "
              f"got {short(value)}")
        check(value >= 1, f"{what}: option {key} must be >= 1, got {value}")
    elif kind == "float":
        check(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
              f"{what}: option {key} must be a finite number, got {short(value)}")
        if "drop" in key or "momentum" in key:
            check(0 <= value < 1, f"{what}: option {key} must be in [0, 1), got {value}")
        else:
            check(value > 0, f"{what}: option {key} must be > 0, got {value}")
    elif kind in ("str", "bool"):
        check(type(value).__name__ == kind, f"{what}: option {key} must be a {kind}, got {short(value)}")


def short(value: Any, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters: error messages quote what the user gave, never a page of it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 15]}... ({len(text)} chars)"


def check(condition: bool, message: str) -> None:
    """Raises ValueError(message) unless condition holds: the one way models reject invalid configurations."""
    if not condition:
        raise ValueError(message)

