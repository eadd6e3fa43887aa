"""MobileViT (Mehta & Rastegari, ICLR 2022), as defined in apple/ml-cvnets (v1, `mobilevit.py` + config).

Stem conv -> MobileNetV2 stages -> three stages of [stride-2 inverted residual, MobileViT block] -> 1x1 conv
-> global pool -> classifier. BatchNorm and SiLU follow every convolution except where ml-cvnets omits them.
"""

from __future__ import annotations

import dataclasses
import math

import keras
from keras import layers

from benchbench.layers import BatchNorm, Dropout, trunc_normal
from benchbench.models._factory import register_model
from benchbench.models.mobilevit.layers import MobileViTTransformer
from benchbench.registry import check, configure

MOBILEVIT_PAPER = "Mehta & Rastegari 2022, MobileViT (arXiv 2110.02178)"


@dataclasses.dataclass(frozen=True)
class MobileViTConfig:
    mv2_channels: tuple[int, int]  # layer1 (stride 1, 1 block), layer2 (stride 2, 3 blocks)
    channels: tuple[int, int, int]  # layer3..5 outputs (each entered by a stride-2 inverted residual)
    dims: tuple[int, int, int]  # transformer width d per MobileViT stage
    depths: tuple[int, ...] = (2, 4, 3)
    expansion: int = 4  # inverted-residual expansion
    num_heads: int = 4
    patch_size: int = 2
    stem_channels: int = 16
    last_expansion: int = 4  # the 1x1 conv before pooling has min(4 * C, 960) channels
    dropout: float = 0.1  # in the transformer layers
    attention_dropout: float = 0.0
    ffn_dropout: float = 0.0
    classifier_dropout: float = 0.1
    # Strides of the stem, layer2 and the three MobileViT stages' entry blocks: 32x downsampling, as in the
    # paper at 256 px. At 32 px that leaves 2x2 and 1x1 maps, one token per attention sequence: small images
    # need a stride of 1 where CIFAR ports remove one (e.g. (2, 2, 2, 1, 1): 4x4 maps in the last two stages).
    strides: tuple[int, ...] = (2, 2, 2, 2, 2)


def build_mobilevit(cfg: MobileViTConfig, *, num_classes: int, image_size: int, name: str) -> keras.Model:
    check(len(cfg.strides) == 5 and all(stride in (1, 2) for stride in cfg.strides),
          f"{name}: strides must be 5 values of 1 or 2 (stem, layer2, layer3..5), got {cfg.strides}")
    factor = math.prod(cfg.strides)
    check(image_size % factor == 0,
          f"{name}: image size {image_size} must be divisible by {factor} (MobileViT downsamples {factor}x)")
    for d in cfg.dims:
        check(d % cfg.num_heads == 0, f"{name}: transformer dim {d} is not divisible by num_heads {cfg.num_heads}")

    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)  # ml-cvnets trains on [0, 1] inputs
    x = _conv_bn(x, cfg.stem_channels, 3, strides=cfg.strides[0], name="stem")
    x = _inverted_residual(x, cfg.mv2_channels[0], 1, cfg.expansion, name="layer1_0")
    for i in range(3):
        x = _inverted_residual(x, cfg.mv2_channels[1], cfg.strides[1] if i == 0 else 1, cfg.expansion,
                               name=f"layer2_{i}")
    stages = zip(cfg.channels, cfg.dims, cfg.depths, cfg.strides[2:])
    for stage, (channels, dim, depth, stride) in enumerate(stages, start=3):
        x = _inverted_residual(x, channels, stride, cfg.expansion, name=f"layer{stage}_down")
        x = _mobilevit_block(x, cfg, dim, depth, name=f"layer{stage}_mvit")
    x = _conv_bn(x, min(cfg.last_expansion * cfg.channels[-1], 960), 1, name="conv_exp")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = Dropout(cfg.classifier_dropout, name="head_drop")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=trunc_normal(0.02), name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def _conv_init() -> keras.initializers.Initializer:
    """ml-cvnets initialises convolutions with kaiming_normal (fan_out) and uses PyTorch BatchNorm defaults.
    A fresh instance per layer: an initializer draws its seed when constructed (see layers.trunc_normal)."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")


def _depthwise_init() -> keras.initializers.Initializer:
    """PyTorch's fan_out of a depthwise (C, 1, k, k) weight is C k^2: Keras' fan_in of a (k, k, C, 1) kernel."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_in", distribution="untruncated_normal")


def _conv_bn(x, filters: int, kernel: int, *, name: str, strides: int = 1, act: bool = True, depthwise: bool = False):
    padding = "same"
    if strides > 1:
        # PyTorch pads (k - 1) / 2 on every side; Keras' "same" would pad only bottom/right for stride 2,
        # shifting every downsampled map by a pixel relative to the official model.
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, strides, padding=padding, use_bias=False,
                                   depthwise_initializer=_depthwise_init(), name=f"{name}_conv")(x)
    else:
        x = layers.Conv2D(filters, kernel, strides, padding=padding, use_bias=False, kernel_initializer=_conv_init(),
                          name=f"{name}_conv")(x)
    x = BatchNorm(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
    return layers.Activation("silu", name=f"{name}_act")(x) if act else x


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet channel rounding, as ml-cvnets applies it to inverted-residual hidden widths."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _inverted_residual(x, filters: int, strides: int, expansion: int, name: str):
    """MobileNetV2 block: 1x1 expand (BN, SiLU) -> 3x3 depthwise (BN, SiLU) -> 1x1 project (BN), residual
    when shape is kept."""
    in_channels = x.shape[-1]
    hidden = make_divisible(round(in_channels * expansion))
    y = _conv_bn(x, hidden, 1, name=f"{name}_expand") if expansion != 1 else x
    y = _conv_bn(y, hidden, 3, strides=strides, depthwise=True, name=f"{name}_dw")
    y = _conv_bn(y, filters, 1, act=False, name=f"{name}_project")
    if strides == 1 and in_channels == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def _mobilevit_block(x, cfg: MobileViTConfig, dim: int, depth: int, name: str):
    """Local 3x3 conv + 1x1 projection to d, global unfold-attend-fold, 1x1 back to C, fuse with the input by a
    3x3 conv over their concatenation."""
    channels = x.shape[-1]
    y = _conv_bn(x, channels, 3, name=f"{name}_local")
    y = layers.Conv2D(dim, 1, use_bias=False, kernel_initializer=_conv_init(), name=f"{name}_to_tokens")(y)
    y = MobileViTTransformer(dim, depth, cfg.num_heads, 2 * dim, cfg.patch_size, dropout=cfg.dropout,
                             attention_dropout=cfg.attention_dropout, ffn_dropout=cfg.ffn_dropout,
                             name=f"{name}_global")(y)
    y = _conv_bn(y, channels, 1, name=f"{name}_proj")
    y = layers.Concatenate(name=f"{name}_concat")([x, y])
    return _conv_bn(y, channels, 3, name=f"{name}_fusion")


def _variant(name: str, num_classes: int, image_size: int, overrides: dict, **defaults) -> keras.Model:
    cfg = configure(MobileViTConfig, defaults, overrides, name)
    return build_mobilevit(cfg, num_classes=num_classes, image_size=image_size, name=name)


@register_model(family="mobilevit", paper=MOBILEVIT_PAPER, image_size=256)
def mobilevit_xxs(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """MobileViT-XXS: channels 16/24/48/64/80, d = 64/80/96, expansion 2; paper: 1.3M params, 69.0% top-1."""
    return _variant("mobilevit_xxs", num_classes, image_size, overrides, mv2_channels=(16, 24),
                    channels=(48, 64, 80), dims=(64, 80, 96), expansion=2,
                    dropout=0.05)  # ml-cvnets mobilevit_xx_small.yaml


@register_model(family="mobilevit", paper=MOBILEVIT_PAPER, image_size=256)
def mobilevit_xs(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """MobileViT-XS: channels 32/48/64/80/96, d = 96/120/144; paper: 2.3M params, 74.7% top-1."""
    return _variant("mobilevit_xs", num_classes, image_size, overrides, mv2_channels=(32, 48),
                    channels=(64, 80, 96), dims=(96, 120, 144))


@register_model(family="mobilevit", paper=MOBILEVIT_PAPER, image_size=256)
def mobilevit_s(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """MobileViT-S: channels 32/64/96/128/160, d = 144/192/240; paper: 5.6M params, 78.4% top-1."""
    return _variant("mobilevit_s", num_classes, image_size, overrides, mv2_channels=(32, 64),
                    channels=(96, 128, 160), dims=(144, 192, 240))
