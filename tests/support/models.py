"""Shared checks every registered model gets (the registry-parametrised tests and scripts/fingerprint.py call
these)."""

from __future__ import annotations

import numpy as np

import benchbench

NUM_CLASSES = 7
BATCH = 4

# The smallest image size each model accepts keeps the checks fast; anything not listed uses 32 px.
TEST_IMAGE_SIZE: dict[str, int] = {}
# Options a model gets in these checks. Swin's official patches of 4 and windows of 7 need 224 px: its small-image
# options (patches of 2, windows of 4) keep every layer type at 32 px. The deep paper variants differ from their
# small siblings only in sizes, which the parameter-count tests check on the real definitions: here fewer blocks
# (every layer type kept, two per Swin stage for the shifted windows) take seconds where the full depth took 10-20.
TEST_OPTIONS: dict[str, dict] = {
    "swin_t": {"patch_size": 2, "window_size": 4},
    "swin_s": {"patch_size": 2, "window_size": 4, "depths": (2, 2, 2, 2)},
    "shiftvit_t": {"depths": (1, 1, 2, 1)},
    "shiftvit_s": {"depths": (1, 1, 2, 1)},
    "vit_small": {"depth": 2},
}


def image_size_for(name: str) -> int:
    return TEST_IMAGE_SIZE.get(name, 32)


def images(size: int, n: int = BATCH, seed: int = 0) -> np.ndarray:
    """Raw RGB in [0, 255], what every model takes."""
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def build(name: str, **overrides):
    return benchbench.create_model(name, num_classes=NUM_CLASSES, image_size=image_size_for(name),
                                   **{**TEST_OPTIONS.get(name, {}), **overrides})
