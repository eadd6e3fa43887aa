"""A search's space: the model's family space (tune/dimensions.py) with the search's own overrides, its keys
checked against the run config. The study loader uses it to validate `[tune.space]` tables."""

from __future__ import annotations

from typing import Any

from benchbench.models import model_info
from benchbench.run.config import SETTABLE
from benchbench.tune.dimensions import COMMON, SPACES, Dimension, parse_dimension

UNTUNABLE = ("epochs", "seed")  # the budget and the seed are the protocol's, not the search's


def space_for(model: str, overrides: dict[str, Any] | None = None) -> dict[str, Dimension]:
    """The model's family space with per-search overrides applied; keys are checked against the run config."""
    family = model_info(model).family
    space = dict(SPACES.get(family, COMMON))
    for key, spec in (overrides or {}).items():
        space[key] = parse_dimension(key, spec)
    for key in space:
        if not (key in SETTABLE or key.startswith("model.")) or key in UNTUNABLE:
            raise ValueError(f"search space: unknown key {key!r}; valid keys: run config fields "
                             f"({', '.join(sorted(k for k in SETTABLE if k not in UNTUNABLE))}) "
                             "or model.<option>")
        space[key].check(key)
    return space


def search_space(model: str, explicit: dict[str, Any], fixed: set[str]) -> dict[str, Dimension]:
    """What `benchbench tune` searches: the family space less the keys the command fixes (--set, --batch-size,
    ...), unless --space names them again."""
    return {key: d for key, d in space_for(model, explicit).items() if key not in fixed or key in explicit}


def parse_space_option(item: str) -> tuple[str, dict]:
    """--space KEY=LOW:HIGH[:log] or KEY=A,B,C (choices), in the study file's {low, high, log} / {choices} form."""
    from benchbench.run.config import parse_literal

    key, sep, raw = item.partition("=")
    parts = raw.split(":")
    if not sep or not key or not raw or len(parts) > 3 or (len(parts) == 3 and parts[2] != "log"):
        raise ValueError(f"--space expects KEY=LOW:HIGH, KEY=LOW:HIGH:log or KEY=A,B,C, got {item!r}")
    if len(parts) > 1:
        return key, {"low": parse_literal(parts[0]), "high": parse_literal(parts[1]), "log": len(parts) == 3}
    choices = [v.strip() for v in raw.split(",")]
    if not all(choices):
        raise ValueError(f"--space {key}: an empty choice in {item!r}; list the values, e.g. {key}=32,64")
    return key, {"choices": [parse_literal(v) for v in choices]}


def describe(dimension: Dimension) -> str:
    if dimension.choices is not None:
        return "{" + ", ".join(map(str, dimension.choices)) + "}"
    return f"[{dimension.low:g}, {dimension.high:g}]" + (" log" if dimension.log else "")
