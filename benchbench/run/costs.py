"""What one model configuration costs, measured in a fresh process: the leaderboard's cost columns.

A run measured inside a long-lived study worker shares its process with the cells before it (its peak memory
rises with queue order: the allocator keeps what earlier cells freed) and its cores with the other workers. A
fresh process that builds the model with the run's recipe, takes a few training steps at the run's batch size
and times compiled inference measures the model alone. It is measured once per model configuration (seeds
share it), by the first study worker that needs it, and kept in the study's results as costs/<key>.json.

The cores may still be shared with other workers while the probe runs: each costs file records how many of the
study's cells ran on the same host around its probe (`host_workers`), as each cell's record does around its run,
and the report labels every timing taken so, the probe's latency and inference speed as well as the runs'
training speed ("2 sharing").

    python -m benchbench.run.costs '<RunConfig.resolved() as JSON>'   # prints the costs as JSON
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchbench import io
from benchbench.fresh_process import run_json
from benchbench.run.config import RunConfig

STEPS = 3  # training steps before the peak is read: the first builds every buffer, the next reuse them
TIMED_STEPS = 10  # then timed one by one: their median is the step time a "seconds" study budgets with
TIMEOUT_SECONDS = 1800


def key(config: RunConfig) -> str:
    """Cells that differ only in what cannot change the costs (seed, epochs, learning rate...) share a key."""
    fields = {name: getattr(config, name) for name in ("model", "dataset", "image_size", "batch_size", "precision",
                                                       "jit_compile")}
    digest = hashlib.sha256(json.dumps({**fields, "model_args": config.resolved()["model_args"]},
                                       sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{config.model}_{digest}"


def path(config: RunConfig, folder: Path) -> Path:
    """Where a study keeps the configuration's costs: FOLDER/<key>.json."""
    return Path(folder) / f"{key(config)}.json"


def measure(config: RunConfig) -> dict:
    """The costs, measured in this process (call it in a fresh one: see `probe`)."""
    import keras
    import numpy as np

    from benchbench.data import get_dataset
    from benchbench.measure import environment, forward_flops, inference_speed, peak_memory, reset_peak_memory
    from benchbench.models import count_params
    from benchbench.run.precision import resolve
    from benchbench.run.recipe import build_training, precision_policy

    spec = get_dataset(config.dataset)
    size = config.image_size or spec.default_image_size
    keras.utils.set_random_seed(config.seed)
    reset_peak_memory()
    framework = peak_memory()["peak_memory_mb"]  # interpreter and framework, before the model exists
    with precision_policy(config.precision):
        model, _ = build_training(config, spec, size, steps_per_epoch=STEPS)
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, (config.batch_size, size, size, 3)).astype("float32")
        y = np.eye(spec.num_classes, dtype="float32")[rng.integers(0, spec.num_classes, config.batch_size)]
        for _ in range(STEPS):
            model.train_on_batch(x, y)
        memory = peak_memory()  # training's peak: inference below needs less
        step_seconds = median_step_seconds(lambda: model.train_on_batch(x, y), TIMED_STEPS)
        return {"key": key(config), "model": config.model, "image_size": size, "batch_size": config.batch_size,
                "precision": resolve(config.precision), "params": count_params(model),
                "gflops": forward_flops(model, size) / 1e9, **inference_speed(model, size, config.batch_size),
                "peak_memory_mb": memory["peak_memory_mb"], "memory_kind": memory["memory_kind"],
                "framework_memory_mb": framework, "training_steps": STEPS, "train_step_seconds": step_seconds,
                "timed_steps": TIMED_STEPS, "environment": environment()}


def median_step_seconds(step: Callable[[], object], steps: int) -> float:
    """The median seconds of `steps` calls of `step`, each timed alone."""
    durations = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def probe(config: RunConfig) -> dict:
    """`measure(config)` in a fresh Python process; RuntimeError with its last line if it fails."""
    return run_json("benchbench.run.costs", json.dumps(config.resolved()), what="the cost probe",
                    timeout=TIMEOUT_SECONDS)


def cached(config: RunConfig, folder: Path, sharing: Callable[[], int] = lambda: 1) -> dict:
    """The configuration's costs from FOLDER/<key>.json, probed and written there first if absent or unreadable
    (two workers probing the same key at once both write the same kind of file; the last rename wins).
    `sharing()` counts the cells running on this machine: the file records the most seen around the probe, as
    its timings' context."""
    file = path(config, folder)
    try:
        costs = json.loads(file.read_text())
        if "train_step_seconds" in costs:  # else written before steps were timed: probe again
            return costs
    except (OSError, ValueError):
        pass
    before = sharing()
    costs = probe(config)
    costs["host_workers"] = max(before, sharing())
    io.write_json(file, costs)
    return costs


def from_run(config: RunConfig, record: dict, folder: Path, host_workers: int) -> dict:
    """Writes FOLDER/<key>.json from the record of the configuration's first cell, run in a fresh process (a
    study's local workers start one for it: study/workers.py), which measured what the probe would: its peak
    memory is the whole run's (the probe's is 13 training steps'), its step time the median inside `fit`."""
    costs = {"key": key(config), "model": config.model, "image_size": record["resolved"]["image_size"],
             "batch_size": config.batch_size, "precision": record["resolved"]["precision"],
             **{name: record[name] for name in ("params", "gflops", "inference_latency_ms",
                                                "inference_images_per_second", "peak_memory_mb", "memory_kind")},
             "train_step_seconds": record["train_step_seconds_median"], "environment": record["environment"],
             "measured_in": "the configuration's first cell, in a fresh process", "host_workers": host_workers}
    io.write_json(path(config, folder), costs)
    return costs


def read_all(folder: Path) -> dict[str, dict]:
    """Key -> costs, for every readable costs file in FOLDER (a report reads them; none is fine)."""
    found = {}
    for file in sorted(Path(folder).glob("*.json")):
        try:
            costs = json.loads(file.read_text())
            found[costs["key"]] = costs
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


if __name__ == "__main__":
    print(json.dumps(measure(RunConfig.from_resolved(json.loads(sys.argv[1])))))
