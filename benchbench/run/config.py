"""A run's configuration: the fields a run is keyed, hashed and logged by, typed overrides (`--set`, study
files), and the usage-level checks that need neither data nor a model. Imports no Keras."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import math
import os
import re
from typing import Any

from benchbench.registry import check, short

PRECISIONS = ("fp32", "bf16", "fp16", "auto")  # fp32; mixed precision in bfloat16 / float16; auto: run/precision.py


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
    # "lr": each step subtracts lr x weight_decay x w (Keras 3 and PyTorch AdamW; DeiT, SPACH, ml-cvnets quote
    # their decay so). "none": weight_decay x w, whatever the rate (TensorFlow Addons' AdamW, which the keras.io
    # ShiftViT tutorial and the original ViT tutorial used: their 1e-4 is 1,000x Keras 3's at lr 1e-3).
    weight_decay_scaling: str = "lr"
    warmup_fraction: float = 0.1
    warmup_start_ratio: float = 0.0  # the warm-up starts at this fraction of learning_rate (keras.io ShiftViT: 0.01)
    min_lr_ratio: float = 0.0
    beta_1: float = 0.9
    beta_2: float = 0.999
    label_smoothing: float = 0.0
    augment: str | None = None  # None: the dataset's default
    val_size: int | None = None  # None: the dataset's default
    precision: str = "fp32"  # fp32 | bf16 | fp16 (mixed precision) | auto (bf16 where it trains faster)
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
        # Fields added after cells were first keyed enter the key only when set: existing results keep theirs.
        keyed = {k: v for k, v in self.resolved().items() if k not in LATER_FIELDS or v != LATER_FIELDS[k]}
        if self.weights:  # the file's content, not only its path: new weights at the same path are a new run
            from benchbench.models.weights import digest

            keyed["weights_sha256"] = digest(self.weights)
        return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def weights(self) -> str | None:
        """The starting weights' file (`model.weights`), or None: trained from scratch."""
        return dict(self.model_args).get("weights")

    def run_name(self) -> str:
        return f"{self.model}_{dataset_slug(self.dataset)}_s{self.seed}_{self.hash()}"


def dataset_slug(dataset: str) -> str:
    """The data set's name as a file name: a registered name as it is, `folder:PATH` as folder-<last part of
    PATH>-<digest of PATH> (two folders of the same name stay apart in run names and report figures)."""
    if dataset.startswith("folder:"):
        path = dataset[len("folder:"):]
        digest = hashlib.sha256(path.encode()).hexdigest()[:6]
        dataset = f"folder-{os.path.basename(os.path.normpath(path))}-{digest}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", dataset)


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
        raise ValueError(f"expected true or false, got {short(raw)}")
    for name, parse, what in (("int", int, "an integer"), ("float", float, "a number")):
        if kind.startswith(name):
            try:
                return parse(raw)
            except ValueError:
                raise ValueError(f"expected {what}, got {short(raw)}") from None
    return raw


LATER_FIELDS = {"weight_decay_scaling": "lr", "warmup_start_ratio": 0.0}  # field -> its default (RunConfig.hash)
WEIGHT_DECAY_SCALINGS = ("lr", "none")

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
            raise ValueError(f"unknown key {short(key)}; valid keys: {', '.join(sorted(SETTABLE))}, or model.<option>")
        if not _type_matches(value, str(SETTABLE[key])) or (isinstance(value, int) and abs(value) > 2**63):
            raise ValueError(f"{key} must be of type {SETTABLE[key]}, got {short(value)}")
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
            raise ValueError(f"--set expects KEY=VALUE, got {short(item)}")
        if key.startswith("model."):
            overrides[key] = parse_literal(raw)
        elif key not in SETTABLE:
            raise ValueError(f"--set: unknown key {short(key)}; valid keys: {', '.join(sorted(SETTABLE))}, "
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
    check(0 <= config.seed < 2**32, f"seed must be in [0, 2**32), got {config.seed}")
    check(config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}")
    check(config.batch_size >= 1, f"batch_size must be >= 1, got {config.batch_size}")
    check(config.image_size is None or config.image_size >= 8, f"image_size must be >= 8, got {config.image_size}")
    check(math.isfinite(config.learning_rate) and config.learning_rate > 0,
          f"learning_rate must be a finite number > 0, got {config.learning_rate}")
    check(math.isfinite(config.weight_decay) and config.weight_decay >= 0,
          f"weight_decay must be a finite number >= 0, got {config.weight_decay}")
    check(config.weight_decay_scaling in WEIGHT_DECAY_SCALINGS,
          f"weight_decay_scaling must be 'lr' or 'none', got {short(config.weight_decay_scaling)}")
    check(config.weight_decay_scaling == "lr" or config.weight_decay < 1,
          f"weight_decay {config.weight_decay} with weight_decay_scaling = 'none' would zero every weight each step")
    for name in ("beta_1", "beta_2", "warmup_fraction", "label_smoothing"):
        value = getattr(config, name)
        check(0 <= value < 1, f"{name} must be in [0, 1), got {value}")
    check(0 <= config.min_lr_ratio <= 1, f"min_lr_ratio must be in [0, 1], got {config.min_lr_ratio}")
    check(0 <= config.warmup_start_ratio <= 1,
          f"warmup_start_ratio must be in [0, 1], got {config.warmup_start_ratio}")
    check(config.precision in PRECISIONS, f"precision must be fp32, bf16, fp16 or auto, got {short(config.precision)}")
    check(config.augment is None or config.augment in AUGMENTATIONS,
          f"augment must be one of {', '.join(AUGMENTATIONS)}, got {short(config.augment)}")
    if config.val_size is not None:
        spec.check_val_size(config.val_size)
    if config.weights is not None:
        from benchbench.models.weights import check_file

        check_file(config.weights)
    train = spec.split_sizes(config.val_size)["train"]
    check(train >= config.batch_size, f"batch_size {config.batch_size} exceeds the {spec.name} training split")
    # The optimizer counts steps in int32 (and the schedule in float32): far beyond any real run.
    check(config.epochs * (train // config.batch_size) < 2**31,
          f"epochs {config.epochs} x {train // config.batch_size} steps is beyond the 2**31 steps a run may take")


def check_model(config: RunConfig) -> None:
    """The run's model builds with its options at its image size (builds it once per distinct model config)."""
    from benchbench.data import get_dataset
    from benchbench.models import check_builds

    spec = get_dataset(config.dataset)
    check_builds(config.model, spec.num_classes, config.image_size or spec.default_image_size, config.model_args)


def check_token_mixing(config: RunConfig) -> None:
    """The run's model mixes tokens at every stage at its image size (see models.check_token_mixing): what a
    study requires of every model it compares."""
    from benchbench.data import get_dataset
    from benchbench.models import check_token_mixing as check

    spec = get_dataset(config.dataset)
    check(config.model, spec.num_classes, config.image_size or spec.default_image_size, config.model_args)
