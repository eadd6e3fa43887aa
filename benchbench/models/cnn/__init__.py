"""Convolutional baselines from keras.applications."""

from benchbench.models.cnn import model, space  # noqa: F401  (registers the variants and the search space)
