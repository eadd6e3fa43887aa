"""Search-space dimensions, and the space each model family declares next to itself (models/<family>/space.py).

Keys are run config fields (`learning_rate`, `batch_size`, ...) and `model.<option>` keys, exactly as in
`--set` and study files. A dimension is a float range (optionally log-scaled), an int range, or a list of
choices; in TOML:

    learning_rate = {low = 1e-4, high = 3e-3, log = true}
    batch_size = {choices = [32, 64, 128]}
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from benchbench.registry import check


@dataclasses.dataclass(frozen=True)
class Dimension:
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple | None = None

    def suggest(self, trial, name: str) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(name, list(self.choices))
        if self.integer:
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def bounds(self) -> list:
        """The values that stand for all the dimension can suggest: its choices, or its two ends."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]

    def check(self, name: str) -> None:
        if self.choices is not None:
            check(len(self.choices) > 0, f"search space {name}: choices must not be empty")
            return
        check(self.low is not None and self.high is not None, f"search space {name}: needs low and high, or choices")
        check(self.low < self.high, f"search space {name}: empty range [{self.low}, {self.high}]; need low < high")
        check(not self.log or self.low > 0, f"search space {name}: a log range needs low > 0, got {self.low}")
        check(all(math.isfinite(v) for v in (self.low, self.high)), f"search space {name}: bounds must be finite")


def Float(low: float, high: float, *, log: bool = False) -> Dimension:  # noqa: N802 (reads as a type)
    return Dimension(float(low), float(high), log=log)


def Int(low: int, high: int, *, log: bool = False) -> Dimension:  # noqa: N802
    return Dimension(low, high, log=log, integer=True)


def Choice(*choices: Any) -> Dimension:  # noqa: N802
    return Dimension(choices=tuple(choices))


SPACES: dict[str, dict[str, Dimension]] = {}

# What every family is tuned over: the optimiser and regularisation knobs of the shared recipe.
COMMON = {
    "learning_rate": Float(1e-4, 3e-3, log=True),
    "weight_decay": Float(1e-5, 0.1, log=True),
    "warmup_fraction": Float(0.0, 0.3),
    "label_smoothing": Float(0.0, 0.2),
    "batch_size": Choice(32, 64, 128),
}


def register_search_space(family: str, dimensions: dict[str, Dimension]) -> None:
    """Declares a family's search space: COMMON plus what that family really depends on."""
    SPACES[family] = {**COMMON, **dimensions}


def parse_dimension(name: str, spec: Any) -> Dimension:
    """A dimension from its TOML/JSON form; raises ValueError naming the key for anything malformed."""
    if not isinstance(spec, dict):
        raise ValueError(f"search space {name}: expected {{low = .., high = ..[, log = true]}} or "
                         f"{{choices = [..]}}, got {spec!r}")
    unknown = set(spec) - {"low", "high", "log", "choices"}
    if unknown:
        raise ValueError(f"search space {name}: unknown field {sorted(unknown)[0]!r}; use low, high, log or choices")
    if "choices" in spec:
        if set(spec) != {"choices"} or not isinstance(spec["choices"], list):
            raise ValueError(f"search space {name}: choices must be a list, alone")
        dimension = Choice(*spec["choices"])
    else:
        low, high = spec.get("low"), spec.get("high")
        numbers = [v for v in (low, high) if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(numbers) != 2:
            raise ValueError(f"search space {name}: low and high must both be numbers")
        integer = all(isinstance(v, int) for v in numbers)
        dimension = Dimension(low, high, log=bool(spec.get("log", False)), integer=integer)
    dimension.check(name)
    return dimension
