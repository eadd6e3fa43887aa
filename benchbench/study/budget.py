"""Budget-matched studies: every model trains for the same training FLOPs, or the same seconds, its epochs derived.

Protocol "flops":

Training FLOPs of one epoch = 3 x the forward FLOPs of one image (forward, and a backward pass of about twice
the forward's, the convention of Kaplan et al. 2020 and most compute-matched comparisons) x the training
images. A model's epochs are the budget divided by that, rounded to the nearest whole epoch (at least one):
what it actually spent is recorded with the study and printed in the leaderboard header.

Protocol "seconds": the same training time on the same machine. One epoch's seconds = the steps per epoch x the
median training step time of the model configuration, timed in a fresh process (the cost probe, run/costs.py:
warm steps first, then steps timed one by one, on the study's batch size and precision). The step time depends on
the machine, so it is measured once per configuration and pinned in the study's storage: every worker, a resumed
study and the report derive the same epochs from it. It is steady-state training: tracing, validation and
bookkeeping are not in the budget, and the runs' own step times (the leaderboard's training images/s) show how
closely they kept to it.
"""

from __future__ import annotations

import dataclasses
import functools

from benchbench.run.config import RunConfig

BACKWARD_FACTOR = 3  # training FLOPs per image = 3 x forward FLOPs


@functools.cache
def epoch_tflops(model: str, dataset: str, image_size: int | None, val_size: int | None,
                 model_args: tuple) -> float:
    """Training TFLOPs of one epoch of this model configuration on this data set's training split."""
    from benchbench.data import get_dataset
    from benchbench.measure import forward_flops
    from benchbench.models import create_model

    spec = get_dataset(dataset)
    size = image_size or spec.default_image_size
    built = create_model(model, num_classes=spec.num_classes, image_size=size, **dict(model_args))
    images = spec.split_sizes(val_size)["train"]
    return BACKWARD_FACTOR * forward_flops(built, size) * images / 1e12


def matched(cells: tuple[RunConfig, ...], budget_tflops: float) -> tuple[tuple[RunConfig, ...], dict]:
    """The cells with their epochs derived from the budget, and per (model, dataset) what was derived:
    {"model/dataset": {"epochs": n, "tflops": spent}}."""
    derived, out = {}, []
    for cell in cells:
        per_epoch = epoch_tflops(cell.model, cell.dataset, cell.image_size, cell.val_size, cell.model_args)
        epochs = max(1, round(budget_tflops / per_epoch))
        derived[f"{cell.model}/{cell.dataset}"] = {"epochs": epochs, "tflops": round(epochs * per_epoch, 4)}
        out.append(dataclasses.replace(cell, epochs=epochs))
    return tuple(out), derived


def steps_per_epoch(cell: RunConfig) -> int:
    from benchbench.data import get_dataset

    return get_dataset(cell.dataset).split_sizes(cell.val_size)["train"] // cell.batch_size


def timed(cells: tuple[RunConfig, ...], budget_seconds: float, step_seconds: dict[str, float]
          ) -> tuple[tuple[RunConfig, ...], dict]:
    """The cells with their epochs derived from the budget and each configuration's training step time (cost key ->
    seconds), and per (model, dataset) what was derived: {"model/dataset": {"epochs", "seconds", "step_seconds"}}."""
    from benchbench.run import costs

    derived, out = {}, []
    for cell in cells:
        step = step_seconds[costs.key(cell)]
        per_epoch = steps_per_epoch(cell) * step
        epochs = max(1, round(budget_seconds / per_epoch))
        derived[f"{cell.model}/{cell.dataset}"] = {"epochs": epochs, "seconds": round(epochs * per_epoch, 1),
                                                   "step_seconds": round(step, 5)}
        out.append(dataclasses.replace(cell, epochs=epochs))
    return tuple(out), derived
