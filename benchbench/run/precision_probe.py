"""The measurement behind precision = "auto" (run/precision.py, which runs this module in a fresh process and
caches what it prints): median training-step seconds of two small models in fp32 and bf16.

    python -m benchbench.run.precision_probe
"""

from __future__ import annotations

import json
import statistics
import time

from benchbench.run.costs import median_step_seconds
from benchbench.run.precision import MARGIN, machine_key

WARM_STEPS, ROUNDS, ROUND_STEPS = 3, 7, 5  # alternating rounds of timed steps per precision


# The probe's models: (model, options); batch 64 at 32 px on the synthetic set.
PROBE_MODELS = {"vit": ("vit_tiny", (("depth", 2), ("patch_size", 4))),
                "shiftvit": ("shiftvit_t_light", (("depths", (2, 2)), ("embed_dim", 48)))}


def measure() -> dict:
    """Each probe model's bf16 speed-up over fp32, and the choice (call it in a fresh process: `choice` does).

    A VM's speed drifts by tens of percent within a minute (one probe read ShiftViT's bf16 at 0.70x, another
    at 1.21x, minutes apart), so the two precisions are timed in alternating rounds, each round's ratio of
    median step times taken, and the median over rounds kept: a drift slower than a round cancels out."""
    from benchbench.measure import environment

    speedups, seconds = {}, {}
    for name, (model, options) in PROBE_MODELS.items():
        steps = {precision: _training_step(model, options, precision) for precision in ("fp32", "bf16")}
        rounds = [{precision: median_step_seconds(step, ROUND_STEPS) for precision, step in steps.items()}
                  for _ in range(ROUNDS)]
        speedups[name] = statistics.median(r["fp32"] / r["bf16"] for r in rounds)
        seconds[name] = {precision: statistics.median(r[precision] for r in rounds) for precision in steps}
    slowest = min(speedups.values())
    return {"precision": "bf16" if slowest >= MARGIN else "fp32", "bf16_speedup": slowest, "speedups": speedups,
            "margin": MARGIN, "step_seconds": seconds, "rounds": ROUNDS, "round_steps": ROUND_STEPS,
            "device": environment()["device"], "machine_key": machine_key(),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _training_step(model: str, options: tuple, precision: str):
    """A compiled model of the precision, warmed up, and a function that takes one training step."""
    import keras
    import numpy as np

    from benchbench.data import get_dataset
    from benchbench.run.config import RunConfig
    from benchbench.run.recipe import build_training, precision_policy

    config = RunConfig(model, "synthetic", batch_size=64, image_size=32, precision=precision, model_args=options)
    spec = get_dataset("synthetic")
    keras.utils.set_random_seed(0)
    with precision_policy(precision):  # the model keeps its layers' dtypes once built
        built, _ = build_training(config, spec, 32, steps_per_epoch=WARM_STEPS + ROUNDS * ROUND_STEPS)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (64, 32, 32, 3)).astype("float32")
    y = np.eye(spec.num_classes, dtype="float32")[rng.integers(0, spec.num_classes, 64)]
    for _ in range(WARM_STEPS):
        built.train_on_batch(x, y)
    return lambda: built.train_on_batch(x, y)


if __name__ == "__main__":
    from benchbench import console

    console.import_backend_quietly()
    print(json.dumps(measure()))
