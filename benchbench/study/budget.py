"""Budget-matched studies: every model trains for the same number of training FLOPs, its epochs derived from it.

Training FLOPs of one epoch = 3 x the forward FLOPs of one image (forward, and a backward pass of about twice
the forward's, the convention of Kaplan et al. 2020 and most compute-matched comparisons) x the training
images. A model's epochs are the budget divided by that, rounded to the nearest whole epoch (at least one):
what it actually spent is recorded with the study and printed in the leaderboard header.
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
