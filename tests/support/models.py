"""Shared checks every registered model gets (the registry-parametrised tests and scripts/fingerprint.py call
these)."""

from __future__ import annotations

import numpy as np

import benchbench

NUM_CLASSES = 7
BATCH = 4

# The smallest image size each model accepts keeps the checks fast; anything not listed uses 32 px.
TEST_IMAGE_SIZE: dict[str, int] = {}


def image_size_for(name: str) -> int:
    return TEST_IMAGE_SIZE.get(name, 32)


def images(size: int, n: int = BATCH, seed: int = 0) -> np.ndarray:
    """Raw RGB in [0, 255], what every model takes."""
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def build(name: str, **overrides):
    return benchbench.create_model(name, num_classes=NUM_CLASSES, image_size=image_size_for(name), **overrides)
