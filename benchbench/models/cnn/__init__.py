"""Convolutional baselines from keras.applications."""

from benchbench.models.cnn import model  # noqa: F401  (registers the variants)
