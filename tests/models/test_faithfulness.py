"""Each family's defining operation against a NumPy reference written from the paper, and the parameter
counts of the paper variants against counts derived from the official definitions."""

import keras
import numpy as np
import pytest

import benchbench
from benchbench.models.cnn.cifar_resnet import SubsampleShortcut
from benchbench.models.cnn.cifar_resnet import _conv as cifar_resnet_conv
from benchbench.models.mobilevit.layers import MobileViTTransformer, fold, unfold
from benchbench.models.shiftvit.layers import partial_shift
from benchbench.models.swin.layers import (
    WindowAttention,
    merge_neighbours,
    relative_position_index,
    shift_attention_mask,
    window_partition,
    window_reverse,
)

RNG = np.random.default_rng(0)


# --- ShiftViT: the partial shift --------------------------------------------------------------------------

def shift_reference(x: np.ndarray, n_div: int) -> np.ndarray:
    """Paper sec. 3.1, pixel by pixel: four groups of C/n_div channels move one pixel left/right/up/down."""
    b, h, w, c = x.shape
    g = c // n_div
    offsets = [(0, 1)] * g + [(0, -1)] * g + [(1, 0)] * g + [(-1, 0)] * g + [(0, 0)] * (c - 4 * g)
    out = np.zeros_like(x)  # what a shift vacates is zero
    for ch, (dy, dx) in enumerate(offsets):
        for i in range(h):
            for j in range(w):
                if 0 <= i + dy < h and 0 <= j + dx < w:
                    out[:, i, j, ch] = x[:, i + dy, j + dx, ch]
    return out


@pytest.mark.parametrize("channels,n_div", [(24, 12), (96, 12), (26, 6)])
def test_partial_shift_matches_reference(channels, n_div):
    x = RNG.normal(size=(2, 5, 6, channels)).astype("float32")
    np.testing.assert_array_equal(np.asarray(partial_shift(x, n_div)), shift_reference(x, n_div))


def test_partial_shift_gradient_is_the_reverse_shift():
    """Backward pass: each input pixel receives the gradient of the output pixel it moved to, border pixels
    that fell off receive none (the adjoint of the reference, accumulated pixel by pixel)."""
    import tensorflow as tf

    x = tf.constant(RNG.normal(size=(2, 5, 6, 26)).astype("float32"))
    upstream = RNG.normal(size=(2, 5, 6, 26)).astype("float32")
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(partial_shift(x, 6) * upstream)
    g = 26 // 6
    offsets = [(0, 1)] * g + [(0, -1)] * g + [(1, 0)] * g + [(-1, 0)] * g + [(0, 0)] * (26 - 4 * g)
    expected = np.zeros_like(upstream)
    for ch, (dy, dx) in enumerate(offsets):
        for i in range(5):
            for j in range(6):
                if 0 <= i + dy < 5 and 0 <= j + dx < 6:
                    expected[:, i + dy, j + dx, ch] += upstream[:, i, j, ch]
    np.testing.assert_array_equal(tape.gradient(loss, x).numpy(), expected)


def test_partial_shift_moves_4_over_n_div_of_the_channels():
    # The keras.io tutorial moves 4 * n_div / C of them (half at C = 96); the paper moves 4 / n_div (a third).
    x = RNG.normal(size=(1, 6, 6, 96)).astype("float32")
    moved = ~np.all(np.asarray(partial_shift(x, 12)) == x, axis=(0, 1, 2))
    assert moved.sum() == 32
    assert moved[:32].all() and not moved[32:].any()


def test_partial_shift_directions_and_zero_border():
    x = np.arange(1, 17, dtype="float32").reshape(1, 4, 4, 1).repeat(4, axis=3)  # C = 4, n_div = 4: g = 1
    out = np.asarray(partial_shift(x, 4))[0]
    grid = x[0, :, :, 0]
    np.testing.assert_array_equal(out[:, :, 0], np.pad(grid[:, 1:], ((0, 0), (0, 1))))  # left
    np.testing.assert_array_equal(out[:, :, 1], np.pad(grid[:, :-1], ((0, 0), (1, 0))))  # right
    np.testing.assert_array_equal(out[:, :, 2], np.pad(grid[1:], ((0, 1), (0, 0))))  # up
    np.testing.assert_array_equal(out[:, :, 3], np.pad(grid[:-1], ((1, 0), (0, 0))))  # down


def test_group_norm_with_one_group_is_the_official_gn1():
    """SPACH's default norm is GroupNorm(1, C): statistics over (C, H, W) per sample, affine per channel."""
    x = RNG.normal(2.0, 3.0, size=(3, 4, 5, 8)).astype("float32")
    layer = keras.layers.GroupNormalization(groups=1, epsilon=1e-5)
    layer.build(x.shape)
    gamma, beta = RNG.normal(size=8).astype("float32"), RNG.normal(size=8).astype("float32")
    layer.set_weights([gamma, beta])
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    var = x.var(axis=(1, 2, 3), keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-5) * gamma + beta
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-4, atol=1e-4)


def test_shiftvit_batch_norm_option_swaps_every_norm_for_the_fused_batch_norm():
    """SPACH's BN ablation: the same network with BatchNorm in place of GN1 (same per-channel affine)."""
    from benchbench.layers.batch_norm import BatchNorm

    gn = benchbench.create_model("shiftvit_keras", num_classes=10, image_size=48)
    bn = benchbench.create_model("shiftvit_keras", num_classes=10, image_size=48, norm="bn")
    norms = [layer for layer in gn.layers if isinstance(layer, keras.layers.GroupNormalization)]
    assert norms and len(norms) == sum(isinstance(layer, BatchNorm) for layer in bn.layers)
    assert benchbench.count_params(bn) == benchbench.count_params(gn)


# --- Shared: the fused BatchNorm ---------------------------------------------------------------------------

def test_fused_batch_norm_matches_the_definition_and_keras():
    """Training step of BatchNorm (TensorFlow's fused kernel): outputs against the NumPy definition, moving
    statistics updated with the biased batch variance, and gradients equal to Keras' composed BatchNorm."""
    import tensorflow as tf

    from benchbench.layers.batch_norm import BatchNorm

    x = tf.constant(RNG.normal(2.0, 3.0, size=(4, 5, 6, 8)).astype("float32"))
    gamma, beta = RNG.normal(size=8).astype("float32"), RNG.normal(size=8).astype("float32")
    ours, keras_bn = BatchNorm(momentum=0.9, epsilon=1e-5), keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    for layer in (ours, keras_bn):
        layer.build(x.shape)
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    ops_used = {op.type for op in tf.function(lambda t: ours(t, training=True)).get_concrete_function(
        tf.TensorSpec(x.shape)).graph.get_operations()}
    assert "FusedBatchNormV3" in ops_used  # the fast path is the one under test
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y_ours, y_keras = ours(x, training=True), keras_bn(x, training=True)
        loss_ours, loss_keras = tf.reduce_sum(y_ours ** 3), tf.reduce_sum(y_keras ** 3)

    xn = x.numpy()
    mean, var = xn.mean(axis=(0, 1, 2)), xn.var(axis=(0, 1, 2))
    np.testing.assert_allclose(y_ours.numpy(), (xn - mean) / np.sqrt(var + 1e-5) * gamma + beta, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.moving_mean.numpy(), 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.moving_variance.numpy(), 0.9 + 0.1 * var, rtol=1e-5)
    for ours_g, keras_g in zip(tape.gradient(loss_ours, [x, ours.gamma, ours.beta]),
                               tape.gradient(loss_keras, [x, keras_bn.gamma, keras_bn.beta])):
        np.testing.assert_allclose(ours_g.numpy(), keras_g.numpy(), rtol=1e-4, atol=1e-3)
    inference = ours(x, training=False).numpy()  # Keras' own path, from the moving statistics
    np.testing.assert_allclose(inference, keras_bn(x, training=False).numpy(), rtol=1e-5, atol=1e-5)


# --- Shared: multi-head self-attention ----------------------------------------------------------------------

def attention_reference(x, wq, bq, wk, bk, wv, bv, wo, bo):
    """Vaswani et al. 2017, eq. 1 and sec. 3.2.2, head by head: softmax(Q K^T / sqrt(d)) V, heads concatenated
    and projected. Kernels (D, heads, width) and (heads, width, D), Keras' MultiHeadAttention layout."""
    heads, width = wq.shape[1], wq.shape[2]
    out = np.zeros(x.shape, np.float64)
    for h in range(heads):
        q, k, v = (x @ w[:, h] + b[h] for w, b in ((wq, bq), (wk, bk), (wv, bv)))
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(width)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        out += (probs @ v) @ wo[h]
    return out + bo


def test_self_attention_matches_the_definition_and_keras_multi_head_attention():
    from benchbench.layers.attention import SelfAttention

    x = RNG.normal(size=(2, 7, 12)).astype("float32")
    ours = SelfAttention(num_heads=3, head_dim=5)
    ours.build(x.shape)
    wq, wk, wv = (RNG.normal(size=(12, 3, 5)).astype("float32") for _ in range(3))
    bq, bk, bv = (RNG.normal(size=(3, 5)).astype("float32") for _ in range(3))
    wo, bo = RNG.normal(size=(3, 5, 12)).astype("float32"), RNG.normal(size=12).astype("float32")
    ours.set_weights([w.reshape(12, 15) for w in (wq, wk, wv)] + [b.reshape(15) for b in (bq, bk, bv)]
                     + [wo.reshape(15, 12), bo])
    expected = attention_reference(x, wq, bq, wk, bk, wv, bv, wo, bo)
    np.testing.assert_allclose(np.asarray(ours(x)), expected, rtol=1e-4, atol=1e-4)

    # The same parameters in Keras' layer give the same outputs: ours is a drop-in re-implementation.
    theirs = keras.layers.MultiHeadAttention(num_heads=3, key_dim=5)
    theirs(x, x)
    theirs.set_weights([wq, bq, wk, bk, wv, bv, wo, bo])
    # Float32 sums in another order (einsum vs Keras' matmuls): differences scale with the outputs (up to ~25
    # here), so the absolute tolerance does too; a wrong head split or projection is off by units, not 1e-5.
    out = np.asarray(theirs(x, x))
    np.testing.assert_allclose(np.asarray(ours(x)), out, rtol=1e-5, atol=1e-5 * np.abs(out).max())


def test_self_attention_initialises_like_keras_multi_head_attention():
    """vit_keras' recipe keeps Keras' default initialisation: the same spread per kernel as Keras' layer."""
    from benchbench.layers.attention import SelfAttention

    x = np.zeros((1, 4, 64), "float32")
    ours, theirs = SelfAttention(num_heads=4, head_dim=64), keras.layers.MultiHeadAttention(num_heads=4, key_dim=64)
    ours(x)
    theirs(x, x)
    ours_kernels = [np.asarray(w) for w in ours.weights if not w.path.endswith("bias")]
    their_kernels = [np.asarray(w) for w in theirs.weights if w.path.endswith("kernel")]
    assert len(ours_kernels) == len(their_kernels) == 4
    for a, b in zip(ours_kernels, their_kernels):
        assert a.size == b.size
        assert abs(a.std() / b.std() - 1) < 0.05 and abs(np.abs(a).max() / np.abs(b).max() - 1) < 0.05


# --- MobileViT: unfold / fold -----------------------------------------------------------------------------

def unfold_reference(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """Paper fig. 1b: sequence p = pixel offset (i, j) within a patch; position n = patch (r, s) in raster order."""
    b, h, w, c = x.shape
    nh, nw = h // ph, w // pw
    out = np.empty((b, ph * pw, nh * nw, c), x.dtype)
    for i in range(ph):
        for j in range(pw):
            for r in range(nh):
                for s in range(nw):
                    out[:, i * pw + j, r * nw + s] = x[:, r * ph + i, s * pw + j]
    return out


@pytest.mark.parametrize("h,w,ph,pw", [(4, 4, 2, 2), (6, 8, 2, 2), (6, 6, 3, 3), (4, 6, 2, 3)])
def test_unfold_matches_reference_and_fold_inverts_it(h, w, ph, pw):
    x = RNG.normal(size=(2, h, w, 5)).astype("float32")
    patches = np.asarray(unfold(x, ph, pw))
    np.testing.assert_array_equal(patches, unfold_reference(x, ph, pw))
    np.testing.assert_array_equal(np.asarray(fold(patches, h, w, ph, pw)), x)  # fold . unfold = identity
    np.testing.assert_array_equal(np.asarray(unfold(np.asarray(fold(patches, h, w, ph, pw)), ph, pw)), patches)


@pytest.mark.parametrize("pixel", [(0, 0), (3, 2), (5, 7)])
def test_mobilevit_attention_mixes_patches_at_the_same_pixel_offset_only(pixel):
    layer = MobileViTTransformer(dim=16, depth=2, num_heads=4, ffn_dim=32, patch_size=2)
    x = RNG.normal(size=(1, 6, 8, 16)).astype("float32")
    y = x.copy()
    y[0, pixel[0], pixel[1]] += RNG.normal(size=16)  # not a constant: LayerNorm would erase that
    changed = np.any(np.abs(np.asarray(layer(y)) - np.asarray(layer(x))) > 1e-6, axis=-1)[0]
    same_offset = np.zeros_like(changed)
    same_offset[pixel[0] % 2::2, pixel[1] % 2::2] = True
    assert not changed[~same_offset].any(), "attention leaked across pixel offsets"
    assert changed[same_offset].all(), "attention did not reach every patch"


# --- ViT: patch order and position embedding --------------------------------------------------------------

def test_vit_tokens_are_raster_ordered_patches_plus_position_embedding():
    model = benchbench.create_model("vit_tiny", num_classes=10, image_size=16, patch_size=4, depth=1)
    embed = keras.Model(model.input, model.get_layer("pos_embed").output)
    x = RNG.uniform(0, 255, size=(2, 16, 16, 3)).astype("float32")
    kernel, bias = model.get_layer("patch_embed").get_weights()
    cls, position = model.get_layer("pos_embed").get_weights()
    mean, std = np.array([0.485, 0.456, 0.406]) * 255, np.array([0.229, 0.224, 0.225]) * 255
    z = (x - mean) / std
    p = 4
    patches = [z[:, r * p:(r + 1) * p, s * p:(s + 1) * p, :].reshape(2, -1) for r in range(4) for s in range(4)]
    tokens = np.stack(patches, axis=1) @ kernel.reshape(-1, kernel.shape[-1]) + bias  # eq. 1: x_p E
    expected = np.concatenate([np.broadcast_to(cls, (2, 1, 192)), tokens], axis=1) + position
    np.testing.assert_allclose(np.asarray(embed(x)), expected, rtol=1e-4, atol=1e-4)
    assert position.shape == (1, 17, 192)


# --- Parameter counts against the official definitions ----------------------------------------------------

def shiftvit_official_params(depths, mlp_ratio, embed=96, patch=4, num_classes=1000) -> int:
    """Counted from microsoft/SPACH models/shiftvit.py: conv stem + GN, blocks of GN + 1x1-conv MLP,
    GN + bias-free 2x2 conv merging, final GN, linear head."""
    total = 3 * embed * patch * patch + embed + 2 * embed
    for stage, depth in enumerate(depths):
        dim = embed * 2**stage
        hidden = int(dim * mlp_ratio)
        total += depth * (2 * dim + dim * hidden + hidden + hidden * dim + dim)
        if stage < len(depths) - 1:
            total += 2 * dim + dim * 2 * dim * 4
    features = embed * 2 ** (len(depths) - 1)
    return total + 2 * features + features * num_classes + num_classes


def mobilevit_official_params(mv2, channels, dims, expansion, depths=(2, 4, 3), num_classes=1000) -> int:
    """Counted from apple/ml-cvnets: bias-free convs followed by BatchNorm (2 parameters per channel)."""

    def conv(cin, cout, k, groups=1, norm=True):
        return k * k * (cin // groups) * cout + (2 * cout if norm else 0)

    def inverted_residual(cin, cout):
        hidden = cin * expansion
        return conv(cin, hidden, 1) + conv(hidden, hidden, 3, groups=hidden) + conv(hidden, cout, 1)

    def transformer(d, ffn):
        return 2 * d + 3 * d * d + 3 * d + d * d + d + 2 * d + d * ffn + ffn + ffn * d + d

    def mobilevit_block(c, d, depth):
        return (conv(c, c, 3) + conv(c, d, 1, norm=False) + depth * transformer(d, 2 * d) + 2 * d
                + conv(d, c, 1) + conv(2 * c, c, 3))

    total = conv(3, 16, 3) + inverted_residual(16, mv2[0]) + inverted_residual(mv2[0], mv2[1])
    total += 2 * inverted_residual(mv2[1], mv2[1])
    prev = mv2[1]
    for c, d, depth in zip(channels, dims, depths):
        total += inverted_residual(prev, c) + mobilevit_block(c, d, depth)
        prev = c
    last = min(4 * prev, 960)
    return total + conv(prev, last, 1) + last * num_classes + num_classes


def vit_official_params(dim, depth, mlp, patch=16, image=224, num_classes=1000) -> int:
    """google-research/vision_transformer: patch conv, [class] token, positions, pre-norm blocks, head."""
    tokens = (image // patch) ** 2 + 1
    block = 2 * dim + 4 * (dim * dim + dim) + 2 * dim + dim * mlp + mlp + mlp * dim + dim
    return (3 * patch * patch * dim + dim + dim + tokens * dim + depth * block + 2 * dim
            + dim * num_classes + num_classes)


def cifar_resnet_paper_params(depth, num_classes=10) -> int:
    """He et al. 2016 sec. 4.2: 3x3 convs without bias, each with a BatchNorm (scale and shift), option-A
    shortcuts (no parameters), a linear head."""
    n, widths = (depth - 2) // 6, (16, 32, 64)
    conv_bn = lambda cin, cout: 9 * cin * cout + 2 * cout  # noqa: E731
    total = conv_bn(3, 16)
    for stage, width in enumerate(widths):
        cin = widths[stage - 1] if stage else 16
        total += conv_bn(cin, width) + conv_bn(width, width) + (n - 1) * 2 * conv_bn(width, width)
    return total + 64 * num_classes + num_classes


PAPER_VARIANTS = {
    # name: (count from the official definition, the paper's quoted size in M, decimals the paper quotes)
    "shiftvit_t_light": (shiftvit_official_params((2, 2, 6, 2), 4), 20, 0),
    "shiftvit_t": (shiftvit_official_params((6, 8, 18, 6), 2), 29, 0),
    "shiftvit_s": (shiftvit_official_params((10, 18, 36, 10), 2), 50, 0),
    "mobilevit_xxs": (mobilevit_official_params((16, 24), (48, 64, 80), (64, 80, 96), 2), 1.3, 1),
    "mobilevit_xs": (mobilevit_official_params((32, 48), (64, 80, 96), (96, 120, 144), 4), 2.3, 1),
    "mobilevit_s": (mobilevit_official_params((32, 64), (96, 128, 160), (144, 192, 240), 4), 5.6, 1),
    "vit_tiny": (vit_official_params(192, 12, 768), 5.7, 1),  # DeiT-Ti: 5M in the DeiT paper's table, 5.7M exactly
    "vit_small": (vit_official_params(384, 12, 1536), 22.1, 1),
    "resnet20": (cifar_resnet_paper_params(20), 0.27, 2),  # the paper's Table 6
}


@pytest.mark.parametrize("name", sorted(PAPER_VARIANTS))
def test_paper_variant_parameter_counts(name):
    official, quoted_millions, decimals = PAPER_VARIANTS[name]
    params = benchbench.count_params(benchbench.model_info(name).build_reference())
    assert params == official
    assert round(params / 1e6, decimals) == quoted_millions


def test_cifar_resnet_depths_match_the_paper_table():
    for depth, quoted in ((32, 0.46), (56, 0.85), (110, 1.7)):
        model = benchbench.create_model("resnet20", num_classes=10, image_size=32, depth=depth)
        params = benchbench.count_params(model)
        assert params == cifar_resnet_paper_params(depth)
        assert round(params / 1e6, 2 if depth < 100 else 1) == quoted


def test_option_a_shortcut_is_the_subsampled_identity_with_zero_channels():
    x = RNG.normal(size=(2, 8, 6, 16)).astype("float32")
    out = np.asarray(SubsampleShortcut(32)(x))
    reference = np.zeros((2, 4, 3, 32), "float32")
    reference[..., :16] = x[:, 0::2, 0::2, :]  # pixel (2i, 2j) of every channel; the 16 new channels are zero
    np.testing.assert_array_equal(out, reference)


def test_cifar_resnet_stride_two_convolution_is_centred_where_the_shortcut_samples():
    """Output pixel i of a stride-2 3x3 convolution sees input pixels 2i-1..2i+1, as with the paper's one-pixel
    padding (Keras' "same" pads only after an even input, centring it on 2i+1)."""
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, cifar_resnet_conv(inputs, 1, 2, "conv"))
    kernel = np.zeros((3, 3, 1, 1), "float32")
    kernel[1, 1] = 1.0  # the centre tap only: the output copies the input pixel its window is centred on
    model.get_layer("conv").set_weights([kernel])
    x = RNG.normal(size=(1, 8, 8, 1)).astype("float32")
    np.testing.assert_array_equal(np.asarray(model(x)), x[:, 0::2, 0::2, :])


def test_vit_keras_matches_the_tutorial_size():
    model = benchbench.create_model("vit_keras", num_classes=100, image_size=32)
    assert round(benchbench.count_params(model) / 1e6, 2) == 21.76


# --- Swin: windows, the shifted-window mask, the relative position bias, patch merging ----------------------

def test_window_partition_holds_each_windows_pixels_and_reverse_inverts_it():
    x = RNG.normal(size=(2, 8, 12, 3)).astype("float32")
    windows = np.asarray(window_partition(x, 4))
    assert windows.shape == (2 * 2 * 3, 16, 3)
    for b in range(2):
        for wy in range(2):
            for wx in range(3):  # windows in raster order per image, pixels in raster order per window
                expected = x[b, 4 * wy:4 * wy + 4, 4 * wx:4 * wx + 4].reshape(16, 3)
                np.testing.assert_array_equal(windows[(b * 2 + wy) * 3 + wx], expected)
    np.testing.assert_array_equal(np.asarray(window_reverse(windows, 4, 8, 12)), x)


def wrapped_edges(height, width, shift):
    """Per pixel of the map rolled up and left by `shift`: which edges it wrapped across (0: none, 1: the left
    edge, 2: the top, 3: both). Two pixels are neighbours in the original map only if they wrapped alike."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return 2 * (rows + shift >= height) + (cols + shift >= width)


def test_shifted_window_mask_separates_exactly_the_pixels_the_roll_brought_together():
    height, width, window, shift = 8, 12, 4, 2
    wrapped = wrapped_edges(height, width, shift)
    mask = shift_attention_mask(height, width, window, shift)
    assert mask.shape == (2 * 3, 16, 16)
    for index in range(6):
        wy, wx = divmod(index, 3)
        region = wrapped[4 * wy:4 * wy + 4, 4 * wx:4 * wx + 4].reshape(16)
        expected = np.where(region[:, None] == region[None, :], 0.0, -100.0)
        np.testing.assert_array_equal(mask[index], expected)


@pytest.mark.parametrize("shift", [False, True])
def test_window_attention_mixes_only_within_a_window_and_its_region(shift):
    """Perturbing one pixel changes the outputs of exactly the pixels in its window (after the roll) that came
    from its side of every wrapped edge: attention never crosses a window or the mask."""
    height = width = 8
    window, size = 4, 2 if shift else 0
    layer = WindowAttention(num_heads=2, window_size=window, shift=shift)
    x = RNG.normal(size=(1, height, width, 8)).astype("float32")
    base = np.asarray(layer(x))
    wrapped = wrapped_edges(height, width, size)
    for pixel in [(0, 0), (3, 5), (6, 1), (7, 7)]:
        moved = x.copy()
        moved[(0, *pixel)] += 1.0
        changed = np.abs(np.asarray(layer(moved)) - base).max(axis=-1)[0] > 1e-6
        rolled = np.array([[((i - size) % height, (j - size) % width) for j in range(width)] for i in range(height)])
        ri, rj = (pixel[0] - size) % height, (pixel[1] - size) % width  # where the roll put the pixel
        same_window = (rolled[..., 0] // window == ri // window) & (rolled[..., 1] // window == rj // window)
        same_region = wrapped[rolled[..., 0], rolled[..., 1]] == wrapped[ri, rj]
        np.testing.assert_array_equal(changed, same_window & same_region)


def test_relative_position_index_addresses_each_offset_in_the_bias_table():
    window = 3
    offsets = [(dy, dx) for dy in range(1 - window, window) for dx in range(1 - window, window)]  # table rows
    index = relative_position_index(window)
    assert index.shape == (9, 9)
    for query in range(9):
        for key in range(9):
            (qy, qx), (ky, kx) = divmod(query, window), divmod(key, window)
            assert index[query, key] == offsets.index((qy - ky, qx - kx))
    layer = WindowAttention(num_heads=5, window_size=window, shift=False)
    layer.build((None, 6, 6, 10))
    assert tuple(layer.bias_table.shape) == ((2 * window - 1) ** 2, 5)


def test_patch_merging_concatenates_the_four_neighbours_in_the_official_order():
    x = RNG.normal(size=(2, 4, 6, 3)).astype("float32")
    out = np.asarray(merge_neighbours(x))
    for i in range(2):
        for j in range(3):  # official x0 = (0, 0), x1 = (1, 0), x2 = (0, 1), x3 = (1, 1) as (row, column)
            expected = np.concatenate([x[:, 2 * i, 2 * j], x[:, 2 * i + 1, 2 * j], x[:, 2 * i, 2 * j + 1],
                                       x[:, 2 * i + 1, 2 * j + 1]], axis=-1)
            np.testing.assert_array_equal(out[:, i, j], expected)


def swin_official_params(embed, depths, heads, window=7, patch=4, mlp=4, image=224, num_classes=1000) -> int:
    """microsoft/Swin-Transformer: patch conv with bias and LayerNorm; per block two LayerNorms, qkv and proj with
    biases, a (2w-1)^2 x heads bias table, the MLP; patch merging's LayerNorm(4C) and 4C -> 2C without bias; the
    final LayerNorm and head."""
    total = 3 * patch * patch * embed + embed + 2 * embed
    for stage, (depth, h) in enumerate(zip(depths, heads)):
        d, w = embed * 2 ** stage, min(window, image // patch // 2 ** stage)
        block = 2 * d + 3 * d * d + 3 * d + (2 * w - 1) ** 2 * h + d * d + d + 2 * d + 2 * mlp * d * d + mlp * d + d
        total += depth * block + (8 * d + 8 * d * d if stage < len(depths) - 1 else 0)
    final = embed * 2 ** (len(depths) - 1)
    return total + 2 * final + final * num_classes + num_classes


@pytest.mark.parametrize("name,official,quoted", [
    ("swin_t", swin_official_params(96, (2, 2, 6, 2), (3, 6, 12, 24)), 28),
    ("swin_s", swin_official_params(96, (2, 2, 18, 2), (3, 6, 12, 24)), 50),
])
def test_swin_parameter_counts(name, official, quoted):
    params = benchbench.count_params(benchbench.model_info(name).build_reference())
    assert params == official
    assert round(params / 1e6) == quoted


@pytest.mark.slow
def test_swin_t_and_its_shift_pair_have_the_papers_multiply_adds():
    """The ShiftViT paper's Table: Swin-T 4.5G FLOPs, Shift-T/light 3.0G at 224 px, counted as multiply-adds (the
    papers' convention); benchbench's GFLOPs count 2 per multiply-add."""
    from benchbench.measure import forward_flops

    for name, paper in (("swin_t", 4.5), ("shiftvit_t_light", 3.0)):
        macs = forward_flops(benchbench.model_info(name).build_reference(), 224) / 2e9
        assert round(macs, 1) == paper, (name, macs)
