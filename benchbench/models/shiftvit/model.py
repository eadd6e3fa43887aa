"""ShiftViT (Wang et al., AAAI 2022, "When Shift Operation Meets Vision Transformer"), as in microsoft/SPACH.

Each block is shift -> x + MLP(Norm(x)); stages are joined by patch merging (Norm + 2x2 stride-2 conv
doubling the width); the official default normalisation is GroupNorm with one group ("GN1").
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from benchbench.layers import (
    BatchNorm,
    Dropout,
    drop_path,
    imagenet_normalization,
    stochastic_depth_rates,
    trunc_normal,
)
from benchbench.models._factory import register_model
from benchbench.models.shiftvit.layers import PartialShift
from benchbench.registry import check, configure

SHIFTVIT_PAPER = "Wang et al. 2022, When Shift Operation Meets Vision Transformer (arXiv 2201.10801)"


@dataclasses.dataclass(frozen=True)
class ShiftViTConfig:
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    mlp_ratio: float = 4.0
    n_div: int = 12
    patch_size: int = 4
    dropout: float = 0.0  # inside the MLPs
    drop_path_rate: float = 0.2
    norm: str = "gn1"  # "gn1" (GroupNorm, 1 group: the official default) or "bn"
    norm_eps: float = 1e-5
    # "valid": SPACH's patch merging (a 2x2 stride-2 convolution drops the last row and column of an odd map);
    # "same": the keras.io tutorial's, which pads them instead (48 px: 12 -> 6 -> 3 -> 2, not 3 -> 1).
    merge_padding: str = "valid"


def build_shiftvit(cfg: ShiftViTConfig, *, num_classes: int, image_size: int, name: str) -> keras.Model:
    check(image_size % cfg.patch_size == 0,
          f"{name}: image size {image_size} is not divisible by the patch size {cfg.patch_size}")
    check(image_size // cfg.patch_size >= 2 ** (len(cfg.depths) - 1),
          f"{name}: image size {image_size} is too small for {len(cfg.depths)} stages of patch merging "
          f"(needs at least {cfg.patch_size * 2 ** (len(cfg.depths) - 1)} px)")
    check(cfg.embed_dim // cfg.n_div >= 1, f"{name}: embed_dim {cfg.embed_dim} must be at least n_div {cfg.n_div}")
    check(cfg.norm in ("gn1", "bn"), f"{name}: norm must be 'gn1' or 'bn', got {cfg.norm!r}")
    check(cfg.merge_padding in ("valid", "same"),
          f"{name}: merge_padding must be 'valid' or 'same', got {cfg.merge_padding!r}")

    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = imagenet_normalization()(inputs)
    x = layers.Conv2D(cfg.embed_dim, cfg.patch_size, strides=cfg.patch_size, kernel_initializer=trunc_normal(0.02),
                      name="patch_embed")(x)
    x = _norm(cfg, "patch_embed_norm")(x)
    x = Dropout(cfg.dropout, name="pos_drop")(x)
    rates = iter(stochastic_depth_rates(cfg.drop_path_rate, sum(cfg.depths)))
    for stage, depth in enumerate(cfg.depths):
        dim = cfg.embed_dim * 2 ** stage
        for i in range(depth):
            x = _shift_block(x, cfg, dim, next(rates), name=f"stage{stage}_block{i}")
        if stage < len(cfg.depths) - 1:  # patch merging
            x = _norm(cfg, f"stage{stage}_merge_norm")(x)
            x = layers.Conv2D(2 * dim, 2, strides=2, padding=cfg.merge_padding, use_bias=False,
                              kernel_initializer=trunc_normal(0.02), name=f"stage{stage}_merge")(x)
    x = _norm(cfg, "norm")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=trunc_normal(0.02), name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def _shift_block(x, cfg: ShiftViTConfig, dim: int, drop_path_rate: float, name: str):
    # The residual starts from the shifted map, as in the official block.
    x = PartialShift(cfg.n_div, name=f"{name}_shift")(x)
    y = _norm(cfg, f"{name}_norm")(x)
    # 1x1 convolutions in the official NCHW code are Dense layers on the channel axis of NHWC.
    y = layers.Dense(int(dim * cfg.mlp_ratio), activation="gelu", kernel_initializer=trunc_normal(0.02),
                     name=f"{name}_fc1")(y)
    y = Dropout(cfg.dropout, name=f"{name}_fc1_drop")(y)
    y = layers.Dense(dim, kernel_initializer=trunc_normal(0.02), name=f"{name}_fc2")(y)
    y = Dropout(cfg.dropout, name=f"{name}_fc2_drop")(y)
    y = drop_path(drop_path_rate, 4, name=f"{name}_drop_path")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def _norm(cfg: ShiftViTConfig, name: str) -> layers.Layer:
    if cfg.norm == "bn":
        return BatchNorm(epsilon=cfg.norm_eps, momentum=0.9, name=name)  # TensorFlow's fused kernel in training
    return layers.GroupNormalization(groups=1, epsilon=cfg.norm_eps, name=name)


def _variant(name: str, num_classes: int, image_size: int, overrides: dict, **defaults) -> keras.Model:
    cfg = configure(ShiftViTConfig, defaults, overrides, name)
    return build_shiftvit(cfg, num_classes=num_classes, image_size=image_size, name=name)


@register_model(family="shiftvit", paper=SHIFTVIT_PAPER)
def shiftvit_t_light(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """Shift-T/light (SPACH `shiftvit_light_tiny`): depths 2/2/6/2, MLP ratio 4; paper: 20M params, 3.0G FLOPs."""
    return _variant("shiftvit_t_light", num_classes, image_size, overrides,
                    depths=(2, 2, 6, 2), mlp_ratio=4.0, drop_path_rate=0.2)


@register_model(family="shiftvit", paper=SHIFTVIT_PAPER)
def shiftvit_t(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """Shift-T (SPACH `shiftvit_r2_tiny`): depths 6/8/18/6, MLP ratio 2; paper: 29M params, 4.5G FLOPs."""
    return _variant("shiftvit_t", num_classes, image_size, overrides,
                    depths=(6, 8, 18, 6), mlp_ratio=2.0, drop_path_rate=0.2)


@register_model(family="shiftvit", paper=SHIFTVIT_PAPER)
def shiftvit_s(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """Shift-S (SPACH `shiftvit_r2_small`): depths 10/18/36/10, MLP ratio 2; paper: 50M params, 8.8G FLOPs."""
    return _variant("shiftvit_s", num_classes, image_size, overrides,
                    depths=(10, 18, 36, 10), mlp_ratio=2.0, drop_path_rate=0.4)


@register_model(family="shiftvit", paper="keras.io 'A Vision Transformer without Attention' (CIFAR-10 recipe)",
                num_classes=10, image_size=48)
def shiftvit_keras(*, num_classes: int, image_size: int, **overrides) -> keras.Model:
    """The keras.io CIFAR-10 hyper-parameters (48 px crops, embed 96, depths 2/4/8/2, MLP ratio 2, MLP dropout
    0.2, stochastic depth 0.2) on the official SPACH structure: GroupNorm(1) (the tutorial uses channel
    LayerNorm), norms after the patch embedding and before pooling (the tutorial has neither), one linear
    drop-path schedule over all blocks (the tutorial restarts it per stage), and the paper's shift of 4 / n_div
    of the channels (the tutorial shifts half of them at C = 96), and the MLP dropout 0.2 also after the patch
    embedding, where SPACH applies its drop rate (the tutorial has none there). Patch merging pads odd maps as
    the tutorial does ("same"), so its 48 px crops end on a 2x2 map, not SPACH's 1x1."""
    return _variant("shiftvit_keras", num_classes, image_size, overrides,
                    depths=(2, 4, 8, 2), mlp_ratio=2.0, dropout=0.2, drop_path_rate=0.2, merge_padding="same")
