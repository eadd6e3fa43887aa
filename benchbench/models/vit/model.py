"""Vision Transformer (Dosovitskiy et al., ICLR 2021) in the DeiT sizes, and the keras.io CIFAR-100 recipe model."""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from benchbench.layers import (
    Dropout,
    SelfAttention,
    drop_path,
    imagenet_normalization,
    stochastic_depth_rates,
    trunc_normal,
)
from benchbench.models._factory import register_model
from benchbench.models.vit.layers import ClassTokenPool, TokenEmbedding
from benchbench.registry import check, configure

VIT_PAPER = "Dosovitskiy et al. 2021, An Image is Worth 16x16 Words (arXiv 2010.11929); DeiT sizes (arXiv 2012.12877)"


@dataclasses.dataclass(frozen=True)
class ViTConfig:
    patch_size: int
    dim: int
    depth: int
    num_heads: int
    mlp_dim: int
    head_dim: int | None = None  # per-head width; None means dim // num_heads (the paper's choice)
    resize_to: int | None = None  # resize inside the model before patching (the keras.io recipe's 72 px)
    pool: str = "token"  # "token": read the [class] token; "flatten": all tokens into an MLP head (keras.io)
    head_units: tuple[int, ...] = ()  # hidden layers of the classifier head (keras.io: 2048, 1024)
    dropout: float = 0.0  # after attention and inside the MLPs
    attention_dropout: float = 0.0
    head_dropout: float = 0.0
    drop_path_rate: float = 0.0
    layer_norm_eps: float = 1e-6
    init_std: float | None = 0.02  # truncated-normal std of dense and embedding weights; None: Keras defaults


def build_vit(cfg: ViTConfig, *, num_classes: int, image_size: int, name: str) -> keras.Model:
    size = cfg.resize_to or image_size
    check(cfg.patch_size >= 1 and size % cfg.patch_size == 0,
          f"{name}: image size {size} is not divisible by the patch size {cfg.patch_size}")
    check(cfg.dim % cfg.num_heads == 0 or cfg.head_dim is not None,
          f"{name}: dim {cfg.dim} is not divisible by num_heads {cfg.num_heads}")
    check(cfg.pool in ("token", "flatten"), f"{name}: pool must be 'token' or 'flatten', got {cfg.pool!r}")

    def dense_init():  # a fresh initializer for every layer (see trunc_normal)
        return trunc_normal(cfg.init_std) if cfg.init_std else "glorot_uniform"

    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = imagenet_normalization()(inputs)
    if cfg.resize_to:
        x = layers.Resizing(cfg.resize_to, cfg.resize_to, name="resize")(x)
    # A stride-p, p x p convolution is the paper's linear projection of flattened patches, patches taken in
    # row-major order; the reshape keeps that order for the tokens.
    x = layers.Conv2D(cfg.dim, cfg.patch_size, strides=cfg.patch_size, kernel_initializer=dense_init(),
                      name="patch_embed")(x)
    x = layers.Reshape((-1, cfg.dim), name="tokens")(x)
    x = TokenEmbedding(class_token=cfg.pool == "token", init_std=cfg.init_std or 0.02, name="pos_embed")(x)
    x = Dropout(cfg.dropout, name="pos_drop")(x)
    for i, rate in enumerate(stochastic_depth_rates(cfg.drop_path_rate, cfg.depth)):
        x = _encoder_block(x, cfg, rate, dense_init, name=f"block{i}")
    x = layers.LayerNormalization(epsilon=cfg.layer_norm_eps, name="norm")(x)
    x = ClassTokenPool(name="cls_pool")(x) if cfg.pool == "token" else layers.Flatten(name="flatten")(x)
    x = Dropout(cfg.head_dropout, name="head_drop")(x)
    for j, units in enumerate(cfg.head_units):
        x = layers.Dense(units, activation="gelu", kernel_initializer=dense_init(), name=f"head_fc{j}")(x)
        x = Dropout(cfg.head_dropout, name=f"head_fc{j}_drop")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=dense_init(), name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def _encoder_block(x, cfg: ViTConfig, drop_path_rate: float, dense_init, name: str):
    """Pre-norm Transformer encoder block (paper eq. 2-3): x + MSA(LN(x)), then x + MLP(LN(x))."""
    head_dim = cfg.head_dim or cfg.dim // cfg.num_heads
    y = layers.LayerNormalization(epsilon=cfg.layer_norm_eps, name=f"{name}_norm1")(x)
    y = SelfAttention(cfg.num_heads, head_dim, dropout=cfg.attention_dropout, init_std=cfg.init_std,
                      extra_tokens=int(cfg.pool == "token"), name=f"{name}_attn")(y)
    y = Dropout(cfg.dropout, name=f"{name}_attn_drop")(y)
    y = drop_path(drop_path_rate, 3, name=f"{name}_drop_path1")(y)
    x = layers.Add(name=f"{name}_add1")([x, y])
    y = layers.LayerNormalization(epsilon=cfg.layer_norm_eps, name=f"{name}_norm2")(x)
    y = layers.Dense(cfg.mlp_dim, activation="gelu", kernel_initializer=dense_init(), name=f"{name}_fc1")(y)
    y = Dropout(cfg.dropout, name=f"{name}_fc1_drop")(y)
    y = layers.Dense(cfg.dim, kernel_initializer=dense_init(), name=f"{name}_fc2")(y)
    y = Dropout(cfg.dropout, name=f"{name}_fc2_drop")(y)
    y = drop_path(drop_path_rate, 3, name=f"{name}_drop_path2")(y)
    return layers.Add(name=f"{name}_add2")([x, y])


def _deit(name: str, num_classes: int, image_size: int, overrides: dict, **defaults) -> keras.Model:
    # Patch 16 is the paper's choice at 224 px; small images (CIFAR, digits) need small patches to keep
    # enough tokens, hence 4 up to 64 px.
    defaults.setdefault("patch_size", 4 if image_size <= 64 else 16)
    cfg = configure(ViTConfig, defaults, overrides, name)
    return build_vit(cfg, num_classes=num_classes, image_size=image_size, name=name)


@register_model(family="vit", paper=VIT_PAPER)
def vit_tiny(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """DeiT-Ti: 192 dim, 12 layers, 3 heads, MLP 768."""
    return _deit("vit_tiny", num_classes, image_size, overrides,
                 dim=192, depth=12, num_heads=3, mlp_dim=768, drop_path_rate=0.1)


@register_model(family="vit", paper=VIT_PAPER)
def vit_small(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """DeiT-S: 384 dim, 12 layers, 6 heads, MLP 1536."""
    return _deit("vit_small", num_classes, image_size, overrides,
                 dim=384, depth=12, num_heads=6, mlp_dim=1536, drop_path_rate=0.1)


@register_model(family="vit", paper="keras.io 'Image classification with Vision Transformer' (CIFAR-100 recipe)",
                num_classes=100, image_size=32)
def vit_keras(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """The keras.io CIFAR-100 configuration: resize to 72, patch 6, dim 64, 8 layers, 4 heads of width 64,
    MLP 128, and a 2048/1024 MLP head on the flattened tokens with dropout 0.5.

    In the ViT paper's encoder block (as every ViT here): dropout 0.1 after the embedding and on each residual
    branch, GELU only after the MLP's first layer. The tutorial's block has no embedding or attention-output
    dropout and a GELU after the MLP's second layer too."""
    defaults = dict(patch_size=6, dim=64, depth=8, num_heads=4, head_dim=64, mlp_dim=128, resize_to=72,
                    pool="flatten", head_units=(2048, 1024), dropout=0.1, attention_dropout=0.1, head_dropout=0.5,
                    init_std=None)
    cfg = configure(ViTConfig, defaults, overrides, "vit_keras")
    return build_vit(cfg, num_classes=num_classes, image_size=image_size, name="vit_keras")
