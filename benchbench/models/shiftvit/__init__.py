"""Shift: ShiftViT, attention replaced by a zero-parameter partial channel shift."""

from benchbench.models.shiftvit import model, space  # noqa: F401  (registers the variants and the search space)
