"""The model registry: `@register_model` on a factory, `list_models(pattern)`, `create_model(name, ...)`."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import keras

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

    def build_reference(self) -> keras.Model:
        return self.factory(num_classes=self.num_classes, image_size=self.image_size)


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(*, family: str, paper: str, num_classes: int = 1000, image_size: int = 224):
    """Registers `factory(num_classes, image_size, **overrides) -> keras.Model` under its function name."""

    def decorate(factory: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        MODELS.add(factory.__name__, ModelEntry(factory.__name__, family, factory, paper, num_classes, image_size))
        return factory

    return decorate


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching an fnmatch pattern, sorted."""
    return MODELS.names(pattern)


def model_info(name: str) -> ModelEntry:
    return MODELS.get(name)


def create_model(name: str, *, num_classes: int, image_size: int, **overrides: Any) -> keras.Model:
    """Builds a registered model taking (image_size, image_size, 3) RGB in [0, 255] and returning logits."""
    entry = MODELS.get(name)
    check(isinstance(num_classes, int) and num_classes >= 2,
          f"num_classes must be an integer >= 2, got {num_classes!r}")
    check(isinstance(image_size, int) and image_size >= 8, f"image_size must be an integer >= 8, got {image_size!r}")
    return entry.factory(num_classes=num_classes, image_size=image_size, **overrides)


@functools.cache
def check_builds(name: str, num_classes: int, image_size: int, model_args: tuple[tuple[str, Any], ...] = ()) -> None:
    """Builds the model once and throws it away: options the factory rejects, or an image size the model cannot
    take, are a ValueError naming them before a study queues a cell (or a search starts a trial)."""
    try:
        create_model(name, num_classes=num_classes, image_size=image_size, **dict(model_args))
    except ValueError:
        raise
    except Exception as error:  # a combination no check foresaw: still the user's options, said in one line
        options = ", ".join(f"{k}={v!r}" for k, v in model_args) or "the defaults"
        raise ValueError(f"{name} does not build at {image_size} px with {options}: "
                         f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from None


def load_model(path) -> keras.Model:
    """Loads a `.keras` file saved from a benchbench model (our layers are registered once this module is imported)."""
    return keras.saving.load_model(path)


def catalogue(pattern: str = "*") -> list[dict[str, str]]:
    """`benchbench models`: one row per matching model, parameters counted from the built reference model."""
    return [{"model": name, "family": entry.family,
             "params (M)": f"{count_params(entry.build_reference()) / 1e6:.2f}",
             "reference config": f"{entry.num_classes} cls @ {entry.image_size} px", "reference": entry.paper}
            for name, entry in ((name, MODELS.get(name)) for name in MODELS.names(pattern))]


def count_params(model: keras.Model) -> int:
    """Trainable parameters: what papers and timm quote (BatchNorm moving statistics are buffers, not parameters)."""
    return sum(math.prod(w.shape) for w in model.trainable_weights)
