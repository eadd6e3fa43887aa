"""Attention: the Vision Transformer family."""

from benchbench.models.vit import model  # noqa: F401  (registers the variants)
