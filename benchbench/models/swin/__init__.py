"""Swin: hierarchical attention within (shifted) windows, the network ShiftViT replaces attention in."""

from benchbench.models.swin import model, space  # noqa: F401  (registers the variants and the search space)
