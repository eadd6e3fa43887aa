"""The measurement behind precision = "auto" (run/precision.py, which runs this module in a fresh process and
caches what it prints): median training-step seconds of two small models in fp32 and bf16.

    python -m benchbench.run.precision_probe
"""

from __future__ import annotations

import json
import statistics
import time

from benchbench.run.precision import MARGIN, machine_key

WARM_STEPS, TIMED_STEPS = 3, 12


# The probe's models: (model, options); batch 64 at 32 px on the synthetic set.
PROBE_MODELS = {"vit": ("vit_tiny", (("depth", 2), ("patch_size", 4))),
                "shiftvit": ("shiftvit_t_light", (("depths", (2, 2)), ("embed_dim", 48)))}


def measure() -> dict:
    """Median training-step seconds of each probe model in fp32 and bf16, and the choice (call it in a fresh
    process: `choice` does)."""
    from benchbench.measure import environment

    seconds = {name: {precision: _step_seconds(model, options, precision) for precision in ("fp32", "bf16")}
               for name, (model, options) in PROBE_MODELS.items()}
    speedups = {name: steps["fp32"] / steps["bf16"] for name, steps in seconds.items()}
    slowest = min(speedups.values())
    return {"precision": "bf16" if slowest >= MARGIN else "fp32", "bf16_speedup": slowest, "speedups": speedups,
            "margin": MARGIN, "step_seconds": seconds, "device": environment()["device"],
            "machine_key": machine_key(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _step_seconds(model: str, options: tuple, precision: str) -> float:
    import keras
    import numpy as np

    from benchbench.data import get_dataset
    from benchbench.run.config import RunConfig
    from benchbench.run.recipe import build_training, precision_policy

    config = RunConfig(model, "synthetic", batch_size=64, image_size=32, precision=precision, model_args=options)
    spec = get_dataset("synthetic")
    keras.utils.set_random_seed(0)
    with precision_policy(precision):
        built, _ = build_training(config, spec, 32, steps_per_epoch=WARM_STEPS + TIMED_STEPS)
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, (64, 32, 32, 3)).astype("float32")
        y = np.eye(spec.num_classes, dtype="float32")[rng.integers(0, spec.num_classes, 64)]
        for _ in range(WARM_STEPS):
            built.train_on_batch(x, y)
        durations = []
        for _ in range(TIMED_STEPS):
            start = time.perf_counter()
            built.train_on_batch(x, y)
            durations.append(time.perf_counter() - start)
    return statistics.median(durations)


if __name__ == "__main__":
    from benchbench import console

    console.import_backend_quietly()
    print(json.dumps(measure()))
