"""CNN baselines from keras.applications, trained from scratch (weights=None)."""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from benchbench.layers import BatchNorm
from benchbench.models._factory import register_model
from benchbench.registry import check, configure


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """ConvNeXt (LayerNorm throughout) has nothing to override."""


@dataclasses.dataclass(frozen=True)
class BatchNormOptions:
    """keras.applications fixes the architectures; only the training-time behaviour of BatchNorm is open.

    bn_momentum: the moving-average momentum of every BatchNormalization layer (None: keras.applications'
    choice, 0.99). Short runs need less: after n steps the moving statistics still weigh their initial
    values (mean 0, variance 1) by momentum**n, 15% after 190 steps at 0.99, which wrecks evaluation while
    training accuracy looks fine. 0.9 matches PyTorch's default (momentum=0.1 there).
    """

    bn_momentum: float | None = None


def _options(name: str, image_size: int, overrides: dict, options_cls=NoOptions):
    options = configure(options_cls, {}, overrides, name)
    check(image_size >= 32, f"{name}: image size {image_size} is below keras.applications' minimum of 32 px")
    momentum = getattr(options, "bn_momentum", None)
    check(momentum is None or 0 <= momentum < 1, f"{name}: bn_momentum must be in [0, 1), got {momentum}")
    return options


def _fused_batch_norm(backbone: keras.Model, momentum: float | None) -> keras.Model:
    """The backbone with every BatchNormalization replaced by our BatchNorm (TensorFlow's fused kernel in
    training; same weights and statistics), with the momentum option applied."""

    def clone(layer):
        if isinstance(layer, layers.BatchNormalization):
            config = layer.get_config()
            if momentum is not None:
                config["momentum"] = momentum
            return BatchNorm.from_config(config)
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(backbone, clone_function=clone)


@register_model(family="cnn", paper="He et al. 2016, Identity Mappings in Deep Residual Networks (arXiv 1603.05027)")
def resnet50v2(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """ResNet50V2 (pre-activation), the keras.io ViT tutorial's CNN baseline."""
    options = _options("resnet50v2", image_size, overrides, BatchNormOptions)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)  # resnet_v2.preprocess_input
    backbone = keras.applications.ResNet50V2(weights=None, input_shape=(image_size, image_size, 3),
                                             classes=num_classes, classifier_activation=None)
    backbone = _fused_batch_norm(backbone, options.bn_momentum)
    return keras.Model(inputs, backbone(x), name="resnet50v2")


@register_model(family="cnn", paper="Liu et al. 2022, A ConvNet for the 2020s (arXiv 2201.03545)")
def convnext_tiny(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """ConvNeXt-T; keras.applications builds its own ImageNet normalisation of [0, 255] inputs."""
    _options("convnext_tiny", image_size, overrides)
    backbone = keras.applications.ConvNeXtTiny(weights=None, input_shape=(image_size, image_size, 3),
                                               classes=num_classes, classifier_activation=None,
                                               include_preprocessing=True)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    return keras.Model(inputs, backbone(inputs), name="convnext_tiny")
