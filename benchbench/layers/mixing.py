"""Where a model mixes information across positions, and where that mixing degenerates.

Layers that mix tokens (self-attention over a sequence, ShiftViT's shift over a feature map) record what they
were built for; `token_mixing(model)` reads it back for every such layer, so a study can refuse a configuration
whose token mixing does nothing at its image size (computed from the built model, not listed by hand).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class TokenMixing:
    layer: str
    kind: str  # "attention": extent is (image tokens in one sequence,); "shift": (height, width) of the map
    extent: tuple[int, ...]

    def degenerate(self) -> str | None:
        """Why this layer mixes nothing, or None."""
        if self.kind == "attention" and self.extent[0] < 2:
            return (f"attention over {self.extent[0]} image token per sequence (a softmax of one score mixes "
                    "nothing)")
        if self.kind == "shift" and min(self.extent) < 2:
            return (f"a one-pixel shift on a {self.extent[0]}x{self.extent[1]} map (it moves nothing, only zeroes "
                    "the shifted channels)")
        return None


def token_mixing(model) -> list[TokenMixing]:
    """Every token-mixing layer of a built model, in layer order, named by its path (nested layers included)."""
    found = []

    def visit(layer, path: str) -> None:
        mixing = getattr(layer, "token_mixing", None)
        if mixing is not None:
            found.append(dataclasses.replace(mixing, layer=path))
        for child in layer._flatten_layers(include_self=False, recursive=False):
            visit(child, f"{path}/{child.name}")

    for layer in model.layers:
        visit(layer, layer.name)
    return found


def degenerate_warning(model, name: str, image_size: int) -> str | None:
    """A one-line warning when some of the model's token mixing does nothing at this image size (a single run
    trains it anyway; a study refuses it), else None."""
    mixing = token_mixing(model)
    broken = [m for m in mixing if m.degenerate()]
    if not broken:
        return None
    return (f"{name} at {image_size} px: {len(broken)} of {len(mixing)} token-mixing layers mix nothing, e.g. "
            f"{broken[0].layer}: {broken[0].degenerate()}; a study would refuse this configuration (README: Small "
            "images)")
