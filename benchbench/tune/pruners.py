"""The pruners a search may use; the study loader reads PRUNERS from here without importing the search."""

from __future__ import annotations

PRUNERS = ("median", "hyperband", "none")


def make_pruner(kind: str, epochs: int):
    import optuna

    if kind == "median":  # prune below the median of earlier trials at the same epoch, after 2 full trials
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"pruner must be one of {', '.join(PRUNERS)}, got {kind!r}")
