"""The one tiny-study builder: a study TOML file written from Python values, so each test states the study it
runs as arguments instead of a hand-written TOML copy. (The study-file tests that check the parser's messages
on hand-edited text keep their raw TOML.)"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"no TOML for {value!r} here")
        return repr(value)  # 0.0001, 1e-05: both TOML floats
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__} {value!r}")


def _table(header: str, values: Mapping) -> list[str]:
    return [f"[{header}]", *(f"{_key(k)} = {_value(v)}" for k, v in values.items())]


def study_toml(name: str, *, datasets: Sequence[str], models: Sequence[str], seeds: Sequence[int],
               epochs: int | None = None, batch_size: int | None = None, image_size: int | None = None,
               recipe: Mapping | None = None, overrides: Mapping[str, Mapping] | None = None,
               tracking: str | None = None, tune: Mapping | None = None, costs: str | None = "in_run",
               precision: str | None = "fp32") -> str:
    """The text of a study file. Top-level settings left None are left out (the study's defaults apply);
    `recipe` becomes [recipe], `overrides` one [overrides.MODEL] table per model (keys such as "model.depth"
    as written), `tracking` the [tracking] backend, `tune` the [tune] table, whose "space" entry (model ->
    key -> dimension dict) becomes [tune.space.MODEL] tables of inline dimension tables. `costs` defaults to
    "in_run" here, not the product's "fresh_process": the probe costs each model configuration a fresh process
    (10-20 s), which only the tests of the costs need to pay. `precision` likewise defaults to "fp32" here (into
    [recipe] unless it names one), not the product's "auto": the tests compare numbers across processes and
    machines, and auto's probe is tested on its own."""
    lines = [f"name = {_value(name)}", f"datasets = {_value(list(datasets))}", f"models = {_value(list(models))}",
             f"seeds = {_value(list(seeds))}"]
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("image_size", image_size)):
        if value is not None:
            lines.append(f"{key} = {_value(value)}")
    if costs is not None:
        lines.append(f"costs = {_value(costs)}")
    recipe = {**({"precision": precision} if precision else {}), **(recipe or {})}
    if recipe:
        lines += _table("recipe", recipe)
    for model, values in (overrides or {}).items():
        lines += _table(f"overrides.{_key(model)}", values)
    if tune is not None:
        tune = dict(tune)
        space = tune.pop("space", {})
        lines += _table("tune", tune)
        for model, dimensions in space.items():
            lines += _table(f"tune.space.{_key(model)}", dimensions)
    if tracking is not None:
        lines += _table("tracking", {"backend": tracking})
    return "\n".join(lines) + "\n"


def write_study(directory: Path, name: str, **settings) -> Path:
    """Writes study_toml(name, **settings) to DIRECTORY/NAME.toml and returns the path."""
    path = Path(directory) / f"{name}.toml"
    path.write_text(study_toml(name, **settings))
    return path
