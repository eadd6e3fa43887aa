"""A run's configuration: the fields a run is keyed, hashed and logged by, typed overrides (`--set`, study
files), and the usage-level checks that need neither data nor a model. Imports no Keras."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
from typing import Any

from benchbench.registry import check

PRECISIONS = ("fp32", "bf16", "fp16")  # fp32, or mixed precision computing in bfloat16 / float16


@dataclasses.dataclass(frozen=True)
class RunConfig:
    model: str
    dataset: str
    seed: int = 0
    epochs: int = 10
    batch_size: int = 64
    image_size: int | None = None  # None: the dataset's default training size
    # Recipe: AdamW, linear warm-up then cosine decay (keras.io ShiftViT / the lecture).
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.1
    min_lr_ratio: float = 0.0
    beta_1: float = 0.9
    beta_2: float = 0.999
    label_smoothing: float = 0.0
    augment: str | None = None  # None: the dataset's default
    val_size: int | None = None  # None: the dataset's default
    precision: str = "fp32"  # fp32 | bf16 | fp16 (mixed precision)
    jit_compile: bool = False
    model_args: tuple[tuple[str, Any], ...] = ()  # model.<key>=<value> overrides, sorted

    def resolved(self) -> dict:
        return {**dataclasses.asdict(self), "model_args": dict(self.model_args)}

    @classmethod
    def from_resolved(cls, resolved: dict) -> RunConfig:
        """The inverse of `resolved()`, also after a JSON round trip (lists come back as tuples)."""
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in resolved.get("model_args", {}).items()}
        return cls(**{**resolved, "model_args": tuple(sorted(args.items()))})

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.resolved(), sort_keys=True).encode()).hexdigest()[:12]

    def run_name(self) -> str:
        return f"{self.model}_{self.dataset}_s{self.seed}_{self.hash()}"


def parse_value(raw: str, kind: Any) -> Any:
    """Parses a --set value for a field of the given annotation string."""
    kind = str(kind)
    if raw.lower() in ("none", "null") and "None" in kind and not kind.startswith("str"):
        return None  # (a string field keeps "none": it is a value there, e.g. augment=none)
    if kind.startswith("bool"):
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("float"):
        return float(raw)
    return raw


SETTABLE = {f.name: f.type for f in dataclasses.fields(RunConfig) if f.name not in ("model", "dataset", "model_args")}


def with_overrides(config: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """Applies typed overrides: run config fields, and `model.<option>` for the model's own options.

    Unknown keys and values of the wrong type raise ValueError naming the key (study files use this directly;
    `--set` parses its strings first)."""
    changes: dict[str, Any] = {}
    model_args = dict(config.model_args)
    for key, value in overrides.items():
        if key.startswith("model."):
            model_args[key[len("model."):]] = tuple(value) if isinstance(value, list) else value
            continue
        if key not in SETTABLE:
            raise ValueError(f"unknown key {key!r}; valid keys: {', '.join(sorted(SETTABLE))}, or model.<option>")
        if not _type_matches(value, str(SETTABLE[key])):
            raise ValueError(f"{key} must be of type {SETTABLE[key]}, got {value!r}")
        changes[key] = float(value) if str(SETTABLE[key]).startswith("float") and value is not None else value
    return dataclasses.replace(config, **changes, model_args=tuple(sorted(model_args.items())))


def _type_matches(value: Any, kind: str) -> bool:
    if value is None:
        return "None" in kind
    if isinstance(value, bool):
        return kind.startswith("bool")
    if isinstance(value, int):
        return kind.startswith(("int", "float"))
    if isinstance(value, float):
        return kind.startswith("float")
    return isinstance(value, str) and kind.startswith("str")


def apply_sets(config: RunConfig, assignments: list[str]) -> RunConfig:
    """Applies --set KEY=VALUE strings; unknown keys and unparsable values raise ValueError naming the key."""
    overrides: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        if key.startswith("model."):
            overrides[key] = parse_literal(raw)
        elif key not in SETTABLE:
            raise ValueError(f"--set: unknown key {key!r}; valid keys: {', '.join(sorted(SETTABLE))}, "
                             "or model.<option>")
        else:
            try:
                overrides[key] = parse_value(raw, SETTABLE[key])
            except ValueError as error:
                raise ValueError(f"--set {key}: {error}") from None
    return with_overrides(config, overrides)


def parse_literal(raw: str) -> Any:
    """A Python literal if it parses as one (numbers, tuples), else true/false, else the string itself."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return {"true": True, "false": False}.get(raw.lower(), raw)


def validate(config: RunConfig) -> None:
    """Usage-level checks that need no data and no model."""
    from benchbench.data import get_dataset
    from benchbench.data.pipeline import AUGMENTATIONS
    from benchbench.models import model_info

    model_info(config.model)
    spec = get_dataset(config.dataset)
    check(config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}")
    check(config.batch_size >= 1, f"batch_size must be >= 1, got {config.batch_size}")
    check(config.learning_rate > 0, f"learning_rate must be > 0, got {config.learning_rate}")
    check(0 <= config.warmup_fraction < 1, f"warmup_fraction must be in [0, 1), got {config.warmup_fraction}")
    check(0 <= config.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {config.label_smoothing}")
    check(config.precision in PRECISIONS, f"precision must be fp32, bf16 or fp16, got {config.precision!r}")
    check(config.augment is None or config.augment in AUGMENTATIONS,
          f"augment must be one of {', '.join(AUGMENTATIONS)}, got {config.augment!r}")
    if config.val_size is not None:
        spec.check_val_size(config.val_size)
    check(spec.split_sizes(config.val_size)["train"] >= config.batch_size,
          f"batch_size {config.batch_size} exceeds the {spec.name} training split")
