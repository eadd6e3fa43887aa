"""Study files: TOML declarations of models x datasets x seeds under one protocol, validated on load.

    name = "demo"
    datasets = ["digits"]
    models = ["vit_tiny", "mobilevit_xxs"]
    seeds = [0, 1]
    epochs = 10                       # shortcuts for recipe.epochs / batch_size / image_size
    costs = "fresh_process"           # cost columns measured once per model in a fresh process, or "in_run"
    protocol = "recipe"               # what is held equal for every model: "recipe" (default), "tuned", "flops"
    budget_tflops = 5.0               # or "seconds". "flops": training TFLOPs per run, epochs derived per model
    budget_seconds = 60.0             # "seconds": training seconds per run on this machine, epochs derived per model
    target_val_top1 = 0.9             # optional: report each model's epochs and seconds to this val top-1
    [recipe]                          # run config fields shared by every cell
    learning_rate = 1e-3
    [overrides.vit_tiny]              # per model: run config fields and "model.<option>" keys
    reason = "..."                    # required when a run config field departs from the protocol
    epochs = 16
    "model.depth" = 6
    [tracking]
    backend = "wandb"                 # or "none"
    [tune]                            # optional: tune every model first, then compare the tuned ones
    trials = 20                       # finished trials per (model, dataset) search, the same for every model
    epochs = 5                        # per trial (default: the study's epochs)
    pruner = "median"                 # median | hyperband | none; never before the warm-up's end
    seed = 7                          # the search seed (default: first seed + 1,000,000; never a reported one)
    [tune.space.vit_tiny]             # per model: override dimensions of the family's search space
    learning_rate = {low = 1e-4, high = 1e-3, log = true}
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from benchbench.registry import short
from benchbench.run.config import RunConfig, check_model, check_token_mixing, validate, with_overrides

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # study names become folder names and W&B groups
SHORTCUTS = ("epochs", "batch_size", "image_size")
TOP_LEVEL = {"name": str, "description": str, "datasets": list, "models": list, "seeds": list, "recipe": dict,
             "overrides": dict, "tracking": dict, "tune": dict, "costs": str, "protocol": str,
             "target_val_top1": float, "budget_tflops": float, "budget_seconds": float,
             **{key: int for key in SHORTCUTS}}
# What a study holds equal for every model. "recipe": the same recipe, epochs, batch, image size and augmentation;
# "tuned": the same search (trials, trial epochs, pruner, seed) per model, then the same recipe otherwise. A model
# may deviate from what its protocol holds equal only with a `reason`, which the leaderboard header prints.
# "flops": the same recipe, and the same training FLOPs (budget_tflops) per run, each model's epochs derived;
# "seconds": the same recipe, and the same training seconds (budget_seconds) per run on the machine that runs it.
PROTOCOLS = ("recipe", "tuned", "flops", "seconds")
BUDGETS = {"flops": ("budget_tflops", "training TFLOPs per run"),
           "seconds": ("budget_seconds", "training seconds per run")}
COSTS = ("fresh_process", "in_run")  # see benchbench/run/costs.py
TRACKING = {"backend": str}
TUNE = {"trials": int, "epochs": int, "pruner": str, "seed": int, "space": dict}
SEARCH_SEED_OFFSET = 1_000_000  # the derived search seed: the first reporting seed + this


class StudyError(ValueError):
    """A study file mistake: the message names the file, the key and the reason."""


@dataclasses.dataclass(frozen=True)
class TuneSpec:
    """Tune-then-compare: each (model, dataset) is searched (validation only) with the same number of trials on
    a search seed that no reported cell uses, and its cells then run with the best configuration found: the
    seeds a result is reported on never chose its configuration."""

    trials: int
    seed: int  # the search's training and sampler seed: declared, or the first reporting seed + SEARCH_SEED_OFFSET
    epochs: int | None = None  # per trial; None: the study's epochs
    pruner: str = "median"
    space: dict = dataclasses.field(default_factory=dict)  # model -> {key: dimension spec}


@dataclasses.dataclass(frozen=True)
class Study:
    name: str
    path: Path | None  # None for studies made in code (a search's confirmation)
    cells: tuple[RunConfig, ...]  # one per (dataset, model, seed), in file order
    tracking: str = "wandb"
    description: str = ""
    tune: TuneSpec | None = None
    costs: str = "in_run"  # "fresh_process": probe each model configuration (study files default to it)
    protocol: str | None = None  # None for studies made in code (a confirmation): no protocol was declared
    deviations: dict = dataclasses.field(default_factory=dict)  # model -> {"fields": {key: value}, "reason": str}
    target_val_top1: float | None = None  # time to target: the first epoch each run reaches this validation top-1
    budget_tflops: float | None = None  # protocol "flops": training TFLOPs per run
    budget_seconds: float | None = None  # protocol "seconds": training seconds per run
    # "model/dataset" -> {"epochs", "tflops"} or {"epochs", "seconds", "step_seconds"} derived. Under "seconds" the
    # cells' epochs are placeholders until study/budget.seconds_matched derives them (it needs the storage).
    budget: dict = dataclasses.field(default_factory=dict)


def load_study(path: str | Path, *, check_models: bool = True) -> Study:
    """Reads and checks a study file. With `check_models` every distinct model configuration is built once, so
    options the model rejects are a usage error here, before anything is queued (local workers skip this: the
    command that started them checked)."""
    path = Path(path)
    data = _read(path)

    def fail(key: str, reason: str):
        raise StudyError(f"{path}: {key}: {reason}")

    for key, value in data.items():
        if key not in TOP_LEVEL:
            fail(key, f"unknown key; valid keys: {', '.join(sorted(TOP_LEVEL))}")
        if not isinstance(value, TOP_LEVEL[key]) or isinstance(value, bool):
            fail(key, f"must be of type {TOP_LEVEL[key].__name__}, got {short(value)}")
    for key in ("name", "datasets", "models", "seeds"):
        if not data.get(key):
            fail(key, "is required and must not be empty")
    if not NAME.fullmatch(data["name"]) or ".." in data["name"]:
        fail("name", f"must be letters, digits, '.', '_' or '-' (it names folders and runs), got {short(data['name'])}")
    if not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32 for s in data["seeds"]):
        fail("seeds", "must be a list of integers in [0, 2**32)")
    if len(set(data["seeds"])) != len(data["seeds"]):
        fail("seeds", "has duplicates")
    tracking = data.get("tracking", {})
    for key in tracking:
        if key not in TRACKING:
            fail(f"tracking.{key}", f"unknown key; valid keys: {', '.join(TRACKING)}")
    backend = tracking.get("backend", "wandb")
    if backend not in ("wandb", "none"):
        fail("tracking.backend", f"must be 'wandb' or 'none', got {short(backend)}")

    from benchbench.data import get_dataset
    from benchbench.models import MODELS

    for name in data["models"]:
        if name not in MODELS:
            fail("models", MODELS.unknown_message(str(name)))
    for name in data["datasets"]:
        try:
            get_dataset(str(name))
        except ValueError as error:  # an unknown name, or a folder that is no data set
            fail("datasets", str(error))

    tune = _tune_spec(fail, data.get("tune"), data["models"], data["seeds"])
    # A study trains in bf16 where the machine running a cell trains faster in it (run/precision.py), unless
    # its recipe names a precision.
    shared = {"precision": "auto", **{k: data[k] for k in SHORTCUTS if k in data}, **data.get("recipe", {})}
    protocol = _protocol(fail, data.get("protocol"), tune)
    overrides, deviations = _deviations(fail, data.get("overrides", {}), data["models"], protocol)
    cells = []
    for dataset in data["datasets"]:
        for model in data["models"]:
            for seed in data["seeds"]:
                cells.append(_cell(fail, model, dataset, seed, shared, overrides.get(model, {})))
    if check_models:
        _check_models(fail, cells, overrides)
    cells, budget = _budget(fail, protocol, data, tuple(cells))
    target = data.get("target_val_top1")
    if target is not None and not 0 < target <= 1:
        fail("target_val_top1", f"must be a validation top-1 in (0, 1], got {short(target)}")
    costs = data.get("costs", "fresh_process")
    if costs not in COSTS:
        fail("costs", f"must be one of {', '.join(map(repr, COSTS))}, got {short(costs)}")
    return Study(name=data["name"], path=path, cells=tuple(cells), tracking=backend,
                 description=data.get("description", ""), tune=tune, costs=costs, protocol=protocol,
                 deviations=deviations, target_val_top1=target, budget_tflops=data.get("budget_tflops"),
                 budget_seconds=data.get("budget_seconds"), budget=budget)


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudyError(f"{path}: no such study file") from None
    except IsADirectoryError:
        raise StudyError(f"{path}: is a directory, not a study file") from None
    except UnicodeDecodeError:
        raise StudyError(f"{path}: not a text file (not UTF-8)") from None
    except OSError as error:  # unreadable, a name too long, ...
        raise StudyError(f"{path}: cannot read it: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise StudyError(f"{path}: not valid TOML: {error}") from None


def _check_models(fail, cells: list[RunConfig], overrides: dict) -> None:
    """Every distinct model configuration builds, and mixes tokens at every stage (a comparison of token mixers
    must not include one that mixes nothing)."""
    for config in cells:
        try:
            check_model(config)
        except ValueError as error:
            fail(f"overrides.{config.model}" if config.model in overrides else "models", str(error))
        try:
            check_token_mixing(config)
        except ValueError as error:
            fail(f"models.{config.model}", str(error))


def _protocol(fail, declared: str | None, tune: TuneSpec | None) -> str:
    protocol = declared or ("tuned" if tune else "recipe")
    if protocol not in PROTOCOLS:
        fail("protocol", f"must be one of {', '.join(map(repr, PROTOCOLS))}, got {short(protocol)}")
    if (protocol == "tuned") != (tune is not None):
        fail("protocol", "'tuned' needs a [tune] table, and a [tune] table needs protocol 'tuned'")
    return protocol


def _budget(fail, protocol: str, data: dict, cells: tuple) -> tuple[tuple, dict]:
    """Under protocol "flops", the cells with their epochs derived from budget_tflops (see study/budget.py);
    every process derives them (local workers too), so all key the same cells. Under "seconds" the budget is
    checked here and the epochs derived when the study runs (they need the storage's pinned step times)."""
    for name, (key, what) in BUDGETS.items():
        if (protocol == name) != (key in data):
            fail(key, f"protocol {name!r} needs {key} ({what}), and only it takes one")
    if protocol not in BUDGETS:
        return cells, {}
    key = BUDGETS[protocol][0]
    if not data[key] > 0:
        fail(key, f"must be > 0, got {short(data[key])}")
    if "epochs" in data or "epochs" in data.get("recipe", {}) or any(
            "epochs" in values for values in data.get("overrides", {}).values()):
        fail("epochs", f"protocol {protocol!r} derives every model's epochs from {key}: remove epochs")
    if protocol == "seconds":
        return cells, {}
    from benchbench.study.budget import matched

    matched_cells, derived = matched(cells, data[key])
    for cell in matched_cells:
        try:
            validate(cell)
        except ValueError as error:
            fail(key, f"{cell.model}: {error}")
    return matched_cells, derived


def _deviations(fail, overrides: dict, models: list, protocol: str) -> tuple[dict, dict]:
    """The overrides without their reasons, and each model's deviations from what the protocol holds equal
    (run config fields; `model.*` options choose the model itself). A deviation without a reason is refused:
    a study must not give one model other inputs, budget or recipe unnoticed."""
    plain, deviations = {}, {}
    for model, values in overrides.items():
        if model not in models:
            fail(f"overrides.{model}", "is not one of this study's models")
        if not isinstance(values, dict):
            fail(f"overrides.{model}", "must be a table")
        values = dict(values)
        reason = values.pop("reason", None)
        changed = {k: v for k, v in values.items() if not str(k).startswith("model.")}
        if reason is not None and (not isinstance(reason, str) or not reason.strip()):
            fail(f"overrides.{model}.reason", "must be a non-empty string")
        if changed and reason is None:
            fail(f"overrides.{model}", f"changes {', '.join(sorted(changed))} for this model alone, which protocol "
                                       f"{protocol!r} holds equal for every model: say why with reason = \"...\"")
        plain[model] = values
        if changed:
            deviations[model] = {"fields": changed, "reason": reason.strip()}
    return plain, deviations


def _tune_spec(fail, table: dict | None, models: list, seeds: list) -> TuneSpec | None:
    if table is None:
        return None
    from benchbench.tune.pruners import PRUNERS
    from benchbench.tune.space import space_for

    for key, value in table.items():
        if key not in TUNE:
            fail(f"tune.{key}", f"unknown key; valid keys: {', '.join(TUNE)}")
        if not isinstance(value, TUNE[key]) or isinstance(value, bool):
            fail(f"tune.{key}", f"must be of type {TUNE[key].__name__}, got {short(value)}")
    if "trials" not in table or table["trials"] < 1:
        fail("tune.trials", "is required and must be >= 1")
    if table.get("epochs", 1) < 1:
        fail("tune.epochs", "must be >= 1")
    if table.get("pruner", "median") not in PRUNERS:
        fail("tune.pruner", f"must be one of {', '.join(PRUNERS)}, got {short(table['pruner'])}")
    seed = table.get("seed", (seeds[0] + SEARCH_SEED_OFFSET) % 2**32)
    if not 0 <= seed < 2**32:
        fail("tune.seed", f"must be in [0, 2**32), got {seed}")
    if seed in seeds:
        fail("tune.seed", f"{seed} is one of the reported seeds: a search must not choose the configuration on the "
                          "seeds it is then reported on; declare another")
    space = table.get("space", {})
    for model, dimensions in space.items():
        if model not in models:
            fail(f"tune.space.{model}", "is not one of this study's models")
        if not isinstance(dimensions, dict):
            fail(f"tune.space.{model}", "must be a table of dimensions")
    for model in models:
        try:
            space_for(model, space.get(model, {}))
        except ValueError as error:
            fail(f"tune.space.{model}", str(error))
    return TuneSpec(trials=table["trials"], seed=seed, epochs=table.get("epochs"),
                    pruner=table.get("pruner", "median"), space=space)


def _cell(fail, model: str, dataset: str, seed: int, shared: dict[str, Any], own: dict[str, Any]) -> RunConfig:
    base = RunConfig(model=str(model), dataset=str(dataset), seed=seed)
    for where, values in (("recipe", shared), (f"overrides.{model}", own)):
        try:
            base = with_overrides(base, values)
        except ValueError as error:
            fail(where, str(error))
    try:
        validate(base)
    except ValueError as error:  # impossible values (names were checked already)
        fail(f"overrides.{model}" if own else "recipe", str(error))
    return base
