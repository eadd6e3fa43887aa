"""The pruners a search may use; the study loader reads PRUNERS from here without importing the search."""

from __future__ import annotations

import math

PRUNERS = ("median", "hyperband", "none")


def warmup_epochs(warmup_fraction: float, epochs: int) -> int:
    """Epochs that end before the recipe's learning-rate warm-up does (trials report 1-based epochs)."""
    return min(epochs, math.ceil(warmup_fraction * epochs))


def make_pruner(kind: str, epochs: int, warmup: int = 0):
    """No trial is judged before the first epoch after its warm-up (`warmup` epochs): a model that warms up
    slowly (a ViT) would otherwise be pruned for its warm-up, not for its configuration."""
    import optuna

    first = min(epochs, warmup + 1)  # the earliest epoch a trial may be pruned at
    if kind == "median":  # below the median of earlier trials at the same epoch, after 2 full trials
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=first)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=first, max_resource=epochs, reduction_factor=3)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"pruner must be one of {', '.join(PRUNERS)}, got {kind!r}")
