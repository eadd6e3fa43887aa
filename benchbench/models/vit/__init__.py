"""Attention: the Vision Transformer family."""

from benchbench.models.vit import model, space  # noqa: F401  (registers the variants and the search space)
