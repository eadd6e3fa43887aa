"""Swin Transformer (Liu et al., ICCV 2021, "Swin Transformer: Hierarchical Vision Transformer using Shifted
Windows"), as microsoft/Swin-Transformer defines it (models/swin_transformer.py and configs/swin/).

A 4x4 patch embedding with LayerNorm, then four stages of blocks x + Attn(LN(x)), x + MLP(LN(x)) whose
attention alternates between regular and shifted windows (layers.py), joined by patch merging; a final
LayerNorm, average pooling and a linear head. ShiftViT (shiftvit/) is this network with every attention
replaced by a partial shift: `swin_t` and `shiftvit_t_light` are that pair (same embed, depths, MLP ratio).

Small images: the official configuration needs 224 px (56 -> 7 px maps for windows of 7). At 32 px, patches
of 2 and windows of 4 (options patch_size=2, window_size=4, as CIFAR ports of Swin use) give 16 -> 2 px maps:
windows of 4x4 in the first three stages and, by the official rule, one 2x2 window without shift in the last.
A configuration whose windows hold a single token is refused, like every degenerate token mixer.

Swin-B is `swin_s` with embed_dim=128, num_heads=(4, 8, 16, 32) and drop_path_rate=0.5 (87,768,224 parameters,
the official count): not registered, because every registered model runs the registry-wide tests, about 20 s
of the suite's 10 minutes for this one.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from benchbench.layers import Dropout, drop_path, imagenet_normalization, stochastic_depth_rates, trunc_normal
from benchbench.models._factory import register_model
from benchbench.models.swin.layers import PatchMerging, WindowAttention
from benchbench.registry import check, configure

SWIN_PAPER = ("Liu et al. 2021, Swin Transformer: Hierarchical Vision Transformer using Shifted Windows "
              "(arXiv 2103.14030)")


@dataclasses.dataclass(frozen=True)
class SwinConfig:
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    patch_size: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0  # after the patch embedding, the attention projection and the MLP layers
    attention_dropout: float = 0.0
    drop_path_rate: float = 0.2
    norm_eps: float = 1e-5


def stage_sizes(cfg: SwinConfig, image_size: int) -> list[int]:
    """The side of each stage's feature map."""
    return [image_size // cfg.patch_size // 2 ** stage for stage in range(len(cfg.depths))]


def _check(cfg: SwinConfig, image_size: int, name: str) -> None:
    check(len(cfg.num_heads) == len(cfg.depths),
          f"{name}: num_heads {list(cfg.num_heads)} needs one entry per stage of depths {list(cfg.depths)}")
    check(image_size % (cfg.patch_size * 2 ** (len(cfg.depths) - 1)) == 0,
          f"{name}: image size {image_size} must be divisible by the patch size {cfg.patch_size} x 2 per "
          f"patch merging ({cfg.patch_size * 2 ** (len(cfg.depths) - 1)})")
    for stage, (size, heads) in enumerate(zip(stage_sizes(cfg, image_size), cfg.num_heads, strict=True)):
        window = min(cfg.window_size, size)
        check(size % window == 0, f"{name}: stage {stage + 1}'s {size}x{size} map does not split into "
                                  f"{window}x{window} windows; choose an image, patch and window size that divide")
        dim = cfg.embed_dim * 2 ** stage
        check(dim % heads == 0, f"{name}: stage {stage + 1}'s width {dim} is not divisible by num_heads {heads}")


def build_swin(cfg: SwinConfig, *, num_classes: int, image_size: int, name: str) -> keras.Model:
    _check(cfg, image_size, name)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = imagenet_normalization()(inputs)
    # PyTorch's default convolution initialisation (the official code leaves the patch embedding to it).
    x = layers.Conv2D(cfg.embed_dim, cfg.patch_size, strides=cfg.patch_size, name="patch_embed",
                      kernel_initializer=keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform"))(x)
    x = layers.LayerNormalization(epsilon=cfg.norm_eps, name="patch_embed_norm")(x)
    x = Dropout(cfg.dropout, name="pos_drop")(x)
    rates = iter(stochastic_depth_rates(cfg.drop_path_rate, sum(cfg.depths)))
    for stage, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads, strict=True)):
        for i in range(depth):
            x = _block(x, cfg, heads, shift=i % 2 == 1, drop_path_rate=next(rates), name=f"stage{stage}_block{i}")
        if stage < len(cfg.depths) - 1:
            x = PatchMerging(cfg.norm_eps, name=f"stage{stage}_merge")(x)
    x = layers.LayerNormalization(epsilon=cfg.norm_eps, name="norm")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=trunc_normal(0.02), name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def _block(x, cfg: SwinConfig, heads: int, shift: bool, drop_path_rate: float, name: str):
    dim = x.shape[-1]
    y = layers.LayerNormalization(epsilon=cfg.norm_eps, name=f"{name}_norm1")(x)
    y = WindowAttention(heads, cfg.window_size, shift, cfg.attention_dropout, cfg.dropout, name=f"{name}_attn")(y)
    x = layers.Add(name=f"{name}_add1")([x, drop_path(drop_path_rate, 4, name=f"{name}_drop_path1")(y)])
    y = layers.LayerNormalization(epsilon=cfg.norm_eps, name=f"{name}_norm2")(x)
    y = layers.Dense(int(dim * cfg.mlp_ratio), activation="gelu", kernel_initializer=trunc_normal(0.02),
                     name=f"{name}_fc1")(y)
    y = Dropout(cfg.dropout, name=f"{name}_fc1_drop")(y)
    y = layers.Dense(dim, kernel_initializer=trunc_normal(0.02), name=f"{name}_fc2")(y)
    y = Dropout(cfg.dropout, name=f"{name}_fc2_drop")(y)
    return layers.Add(name=f"{name}_add2")([x, drop_path(drop_path_rate, 4, name=f"{name}_drop_path2")(y)])


def _variant(name: str, num_classes: int, image_size: int, overrides: dict, **defaults) -> keras.Model:
    cfg = configure(SwinConfig, defaults, overrides, name)
    return build_swin(cfg, num_classes=num_classes, image_size=image_size, name=name)


@register_model(family="swin", paper=SWIN_PAPER, matched="shiftvit_t_light")
def swin_t(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """Swin-T (configs/swin/swin_tiny_patch4_window7_224): embed 96, depths 2/2/6/2, heads 3/6/12/24, window 7,
    drop path 0.2; paper: 28M params, 4.5G FLOPs (multiply-adds). Shift-T/light is it with shifts for attention."""
    return _variant("swin_t", num_classes, image_size, overrides)


@register_model(family="swin", paper=SWIN_PAPER)
def swin_s(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """Swin-S (swin_small_patch4_window7_224): depths 2/2/18/2, drop path 0.3; paper: 50M params, 8.7G FLOPs."""
    return _variant("swin_s", num_classes, image_size, overrides, depths=(2, 2, 18, 2), drop_path_rate=0.3)
