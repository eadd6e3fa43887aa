"""The model registry: `@register_model` on a factory, `list_models(pattern)`, `create_model(name, ...)`."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import keras

from benchbench.layers import token_mixing
from benchbench.registry import Registry, check


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    factory: Callable[..., keras.Model]
    paper: str
    # The configuration the variant is defined (and its parameter count quoted) at.
    num_classes: int
    image_size: int
    # A model of another family with the same macro-architecture (stages, widths, depths) and another token mixer:
    # the pair whose comparison isolates the mixer (Swin-T and Shift-T/light).
    matched: str | None = None

    def build_reference(self) -> keras.Model:
        return self.factory(num_classes=self.num_classes, image_size=self.image_size)


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(*, family: str, paper: str, num_classes: int = 1000, image_size: int = 224,
                   matched: str | None = None):
    """Registers `factory(num_classes, image_size, **overrides) -> keras.Model` under its function name."""

    def decorate(factory: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        MODELS.add(factory.__name__, ModelEntry(factory.__name__, family, factory, paper, num_classes, image_size,
                                                matched))
        return factory

    return decorate


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching an fnmatch pattern, sorted."""
    return MODELS.names(pattern)


def model_info(name: str) -> ModelEntry:
    return MODELS.get(name)


def create_model(name: str, *, num_classes: int, image_size: int, weights: str | None = None,
                 **overrides: Any) -> keras.Model:
    """Builds a registered model taking (image_size, image_size, 3) RGB in [0, 255] and returning logits; with
    `weights` (a .keras or .weights.h5 file of the same model and options), starting from those (models/weights.py:
    only a head of another class count is left fresh)."""
    entry = MODELS.get(name)
    check(isinstance(num_classes, int) and num_classes >= 2,
          f"num_classes must be an integer >= 2, got {num_classes!r}")
    check(isinstance(image_size, int) and image_size >= 8, f"image_size must be an integer >= 8, got {image_size!r}")
    model = entry.factory(num_classes=num_classes, image_size=image_size, **overrides)
    if weights is not None:
        from benchbench.models.weights import load_into

        load_into(model, weights, name)
    return model


def check_builds(name: str, num_classes: int, image_size: int, model_args: tuple[tuple[str, Any], ...] = ()) -> None:
    """Builds the model once and throws it away: options the factory rejects, or an image size the model cannot
    take, are a ValueError naming them before a study queues a cell (or a search starts a trial)."""
    _built(name, num_classes, image_size, model_args)


def check_token_mixing(name: str, num_classes: int, image_size: int,
                       model_args: tuple[tuple[str, Any], ...] = ()) -> None:
    """A ValueError when any token-mixing layer of the model degenerates at this image size (attention over one
    token, a shift on a 1-pixel map), naming the first such layer and the smallest image size that works."""
    mixing = _built(name, num_classes, image_size, model_args)
    broken = [m for m in mixing if m.degenerate()]
    if not broken:
        return
    works = _smallest_working_size(name, num_classes, image_size, model_args)
    hint = (f"the smallest image size that works is {works} px" if works else
            f"no image size up to {4 * image_size} px works") + ", or use the model's small-image options"
    raise ValueError(f"{name} at {image_size} px: {len(broken)} of {len(mixing)} token-mixing layers degenerate, "
                     f"e.g. {broken[0].layer}: {broken[0].degenerate()}; {hint}")


def _smallest_working_size(name: str, num_classes: int, image_size: int, model_args) -> int | None:
    # Mixing extents never shrink as images grow: the first size (in steps of 4 px, up to 4x) that builds
    # without a degenerate layer. Sizes the model rejects fail before any layer is built.
    for size in range(image_size - image_size % 4 + 4, 4 * image_size + 1, 4):
        try:
            if not any(m.degenerate() for m in _built(name, num_classes, size, model_args)):
                return size
        except ValueError:
            continue
    return None


@functools.cache
def _built(name: str, num_classes: int, image_size: int, model_args: tuple[tuple[str, Any], ...]) -> tuple:
    """Builds the model and keeps only what its token-mixing layers saw (see layers.token_mixing)."""
    try:
        model = create_model(name, num_classes=num_classes, image_size=image_size, **dict(model_args))
    except ValueError:
        raise
    except Exception as error:  # a combination no check foresaw: still the user's options, said in one line
        options = ", ".join(f"{k}={v!r}" for k, v in model_args) or "the defaults"
        raise ValueError(f"{name} does not build at {image_size} px with {options}: "
                         f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from None
    return tuple(token_mixing(model))


def load_model(path) -> keras.Model:
    """Loads a `.keras` file saved from a benchbench model (our layers are registered once this module is imported)."""
    return keras.saving.load_model(path)


def catalogue(pattern: str = "*") -> list[dict[str, str]]:
    """`benchbench models`: one row per matching model, parameters counted from the built reference model."""
    return [{"model": name, "family": entry.family,
             "params (M)": f"{count_params(entry.build_reference()) / 1e6:.2f}",
             "reference config": f"{entry.num_classes} cls @ {entry.image_size} px",
             "matched pair": matched_pair(name) or "", "reference": entry.paper}
            for name, entry in ((name, MODELS.get(name)) for name in MODELS.names(pattern))]


def matched_pair(name: str) -> str | None:
    """The model registered as this one's matched pair, in either direction."""
    if MODELS.get(name).matched:
        return MODELS.get(name).matched
    return next((other for other in MODELS.names() if MODELS.get(other).matched == name), None)


def count_params(model: keras.Model) -> int:
    """Trainable parameters: what papers and timm quote (BatchNorm moving statistics are buffers, not parameters)."""
    return sum(math.prod(w.shape) for w in model.trainable_weights)
