"""Stochastic depth (Huang et al. 2016) and the rate schedule the paper families use."""

from __future__ import annotations

from keras import layers

from benchbench.layers.dropout import Dropout


def drop_path(rate: float, rank: int, name: str) -> layers.Layer:
    """Drops a whole residual branch per sample.

    That is dropout whose mask is shared by every position and channel of a sample, which Keras' own
    Dropout does with a broadcast noise_shape (and it scales the kept branches by 1 / (1 - rate)).
    """
    return Dropout(rate, noise_shape=(None,) + (1,) * (rank - 1), name=name)


def stochastic_depth_rates(max_rate: float, depth: int) -> list[float]:
    """Linearly increasing drop-path rates from 0 to max_rate over `depth` blocks (timm / SPACH rule)."""
    if depth == 1:
        return [0.0]
    return [max_rate * i / (depth - 1) for i in range(depth)]
