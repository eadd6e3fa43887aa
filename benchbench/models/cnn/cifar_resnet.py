"""The CIFAR ResNets of He et al. 2016 (arXiv 1512.03385, section 4.2): the small-image CNN baseline.

The ImageNet ResNets downsample 32x and hold 25M parameters; the paper's CIFAR networks are built for 32 px:
a 3x3 convolution with 16 filters, then three stages of n basic blocks (two 3x3 convolutions, BatchNorm after
each, ReLU after the first and after the sum) on 32x32, 16x16 and 8x8 maps with 16, 32 and 64 filters, global
average pooling and a linear classifier: 6n + 2 weighted layers (ResNet-20: n = 3, 0.27M parameters). The
first block of stages 2 and 3 subsamples with a stride-2 convolution, and its shortcut is the paper's option A:
the identity on every other pixel, with zeros for the new channels (no parameters).

Where this port chooses:
- Stride-2 convolutions pad one pixel on each side (as the paper's Torch/Caffe convolutions do), not Keras'
  "same" (which pads only after): output pixel i is then centred on input pixel 2i, the pixel the option-A
  shortcut takes.
- Inputs in [0, 255] are scaled to [-1, 1]: the paper subtracts the training set's per-pixel mean, which a
  model that takes any data set cannot know.
- BatchNorm momentum 0.9 (PyTorch's default, which the common ports use): Keras' 0.99 keeps 0.99**n of the
  initial statistics after n steps, too many for short runs (see cnn/model.py, BatchNormOptions).
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers, ops

from benchbench.layers import BatchNorm
from benchbench.models._factory import register_model
from benchbench.registry import check, configure

PAPER = "He et al. 2016, Deep Residual Learning for Image Recognition (arXiv 1512.03385), CIFAR networks"
WIDTHS = (16, 32, 64)


@dataclasses.dataclass(frozen=True)
class CifarResNetOptions:
    """depth: 6n + 2 weighted layers (20, 32, 44, 56, 110 in the paper); bn_momentum: see the module docstring."""

    depth: int = 20
    bn_momentum: float = 0.9


@keras.saving.register_keras_serializable(package="benchbench")
class SubsampleShortcut(layers.Layer):
    """Option A: the identity on every other pixel of every other row, zero-padded to `channels` channels."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels

    def call(self, x):
        x = x[:, ::2, ::2, :]
        extra = self.channels - x.shape[-1]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        half = lambda n: None if n is None else (n + 1) // 2  # noqa: E731
        return batch, half(height), half(width), self.channels

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def _conv(x, filters: int, stride: int, name: str):
    if stride > 1:  # symmetric padding: output pixel i centred on input pixel 2i (see the module docstring)
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return layers.Conv2D(filters, 3, strides=stride, padding="valid" if stride > 1 else "same", use_bias=False,
                         kernel_initializer="he_normal", name=name)(x)


def _block(x, filters: int, stride: int, momentum: float, name: str):
    shortcut = x if stride == 1 else SubsampleShortcut(filters, name=f"{name}_shortcut")(x)
    y = _conv(x, filters, stride, f"{name}_conv1")
    y = layers.ReLU(name=f"{name}_relu1")(BatchNorm(momentum=momentum, name=f"{name}_bn1")(y))
    y = BatchNorm(momentum=momentum, name=f"{name}_bn2")(_conv(y, filters, 1, f"{name}_conv2"))
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def _cifar_resnet(name: str, num_classes: int, image_size: int, overrides: dict) -> keras.Model:
    options = configure(CifarResNetOptions, {}, overrides, name)
    check(isinstance(options.depth, int) and options.depth >= 8 and (options.depth - 2) % 6 == 0,
          f"{name}: depth must be 6n + 2 (20, 32, 44, 56, 110), got {options.depth}")
    check(0 <= options.bn_momentum < 1, f"{name}: bn_momentum must be in [0, 1), got {options.bn_momentum}")
    check(image_size >= 8, f"{name}: image size {image_size} is below 8 px (two stride-2 stages)")
    blocks = (options.depth - 2) // 6
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    x = _conv(x, WIDTHS[0], 1, "stem_conv")
    x = layers.ReLU(name="stem_relu")(BatchNorm(momentum=options.bn_momentum, name="stem_bn")(x))
    for stage, filters in enumerate(WIDTHS):
        for index in range(blocks):
            stride = 2 if stage > 0 and index == 0 else 1
            x = _block(x, filters, stride, options.bn_momentum, f"stage{stage + 1}_block{index + 1}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(num_classes, name="head")(x)
    return keras.Model(inputs, outputs, name=name)


@register_model(family="cnn", paper=PAPER, num_classes=10, image_size=32)
def resnet20(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """ResNet-20 for CIFAR (n = 3): 0.27M parameters, the paper's smallest; `depth` gives its deeper siblings."""
    return _cifar_resnet("resnet20", num_classes, image_size, overrides)
