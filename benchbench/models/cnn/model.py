"""CNN baselines from keras.applications, trained from scratch (weights=None)."""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from benchbench.models._factory import register_model
from benchbench.registry import check, configure


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """keras.applications fixes these architectures: there is nothing to override."""


def _validate(name: str, image_size: int, overrides: dict) -> None:
    configure(NoOptions, {}, overrides, name)
    check(image_size >= 32, f"{name}: image size {image_size} is below keras.applications' minimum of 32 px")


@register_model(family="cnn", paper="He et al. 2016, Identity Mappings in Deep Residual Networks (arXiv 1603.05027)")
def resnet50v2(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """ResNet50V2 (pre-activation), the keras.io ViT tutorial's CNN baseline."""
    _validate("resnet50v2", image_size, overrides)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)  # resnet_v2.preprocess_input
    backbone = keras.applications.ResNet50V2(weights=None, input_shape=(image_size, image_size, 3),
                                             classes=num_classes, classifier_activation=None)
    return keras.Model(inputs, backbone(x), name="resnet50v2")


@register_model(family="cnn", paper="Liu et al. 2022, A ConvNet for the 2020s (arXiv 2201.03545)")
def convnext_tiny(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """ConvNeXt-T; keras.applications builds its own ImageNet normalisation of [0, 255] inputs."""
    _validate("convnext_tiny", image_size, overrides)
    backbone = keras.applications.ConvNeXtTiny(weights=None, input_shape=(image_size, image_size, 3),
                                               classes=num_classes, classifier_activation=None,
                                               include_preprocessing=True)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    return keras.Model(inputs, backbone(inputs), name="convnext_tiny")
