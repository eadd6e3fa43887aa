"""Token mixing: what each model's mixing layers see at an image size, when that mixing degenerates (proved
on the operations themselves), and studies refusing a model that would compare a mixer that mixes nothing."""

import numpy as np
import pytest

import benchbench
from benchbench.layers import SelfAttention, token_mixing
from benchbench.models.shiftvit.layers import partial_shift
from benchbench.study.file import load_study
from support.cli import main
from support.models import build
from support.studies import write_study

MIXERS = {"vit": "attention", "shiftvit": "shift", "mobilevit": "attention", "swin": "attention", "cnn": None}


@pytest.mark.parametrize("name", benchbench.list_models())
def test_every_model_reports_its_token_mixing(name):
    """Every family's mixing layers are found (none in the CNNs), each recording the input it was built for."""
    kind = MIXERS[benchbench.model_info(name).family]
    mixing = token_mixing(build(name))
    assert {m.kind for m in mixing} == ({kind} if kind else set())
    assert all(len(m.extent) == (1 if m.kind == "attention" else 2) and min(m.extent) >= 1 for m in mixing)


def extents(name, image_size, **options):
    model = benchbench.create_model(name, num_classes=10, image_size=image_size, **options)
    return sorted({m.extent for m in token_mixing(model)}, reverse=True)


def test_extents_follow_each_family_downsampling():
    # ViT: (32 / 8)^2 patches, the class token not counted; keras' ViT resizes to 72 px first: (72 / 6)^2.
    assert extents("vit_tiny", 32, patch_size=8, depth=1) == [(16,)]
    assert extents("vit_keras", 32, depth=1) == [(144,)]
    # ShiftViT at 48 px: patches of 4 give 12x12; SPACH's unpadded merging ends 3 -> 1, the tutorial's "same" 3 -> 2.
    assert extents("shiftvit_t_light", 48, depths=(1, 1, 1, 1)) == [(12, 12), (6, 6), (3, 3), (1, 1)]
    assert extents("shiftvit_keras", 48, depths=(1, 1, 1, 1)) == [(12, 12), (6, 6), (3, 3), (2, 2)]
    # MobileViT at 32 px: 4x4, 2x2 and 1x1 maps (the last resized up to 2x2), patches of 2x2 -> 4, 1, 1 tokens;
    # stride 1 into the last two stages keeps 4x4 maps there.
    assert extents("mobilevit_xxs", 32, depths=(1, 1, 1)) == [(4,), (1,)]
    assert extents("mobilevit_xxs", 32, depths=(1, 1, 1), strides=(2, 2, 2, 1, 1)) == [(4,)]
    # Swin: windows of 7x7 on 56 -> 7 px maps at 224 px; at 32 px with patches of 2 and windows of 4, 16 -> 2 px
    # maps, the last a single 2x2 window (the official rule); with patches of 4 the last map is 1x1: one token.
    assert extents("swin_t", 224, depths=(1, 1, 1, 1)) == [(49,)]
    assert extents("swin_t", 32, depths=(1, 1, 1, 1), patch_size=2, window_size=4) == [(16,), (4,)]
    assert extents("swin_t", 32, depths=(1, 1, 1, 1), patch_size=4, window_size=4) == [(16,), (4,), (1,)]


def test_a_shift_on_a_one_pixel_map_moves_nothing():
    """NumPy: on a 1-pixel-wide map every shifted channel is zeroed and nothing moves (the rule behind
    'degenerate'); on 2x2 each shifted group holds a neighbour's pixel."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 1, 1, 24)).astype("float32")
    out = np.asarray(partial_shift(x, n_div=12))  # g = 2: channels [0, 8) shift, the rest pass
    np.testing.assert_array_equal(out[..., :8], 0)
    np.testing.assert_array_equal(out[..., 8:], x[..., 8:])
    x = rng.normal(size=(2, 2, 2, 24)).astype("float32")
    out = np.asarray(partial_shift(x, n_div=12))
    np.testing.assert_array_equal(out[:, :, 0, 0:2], x[:, :, 1, 0:2])  # left: out[w] = x[w + 1]


def test_attention_over_one_token_only_projects_it():
    """NumPy: a softmax over one score is 1, so attention over a single token is the value and output
    projections of that token alone, whatever the query and key weights."""
    layer = SelfAttention(num_heads=2, head_dim=4)
    x = np.random.default_rng(1).normal(size=(3, 1, 8)).astype("float32")
    out = np.asarray(layer(x))
    wv, bv = np.asarray(layer.qkv_kernels[2]), np.asarray(layer.qkv_biases[2])
    expected = (x @ wv + bv) @ np.asarray(layer.output_kernel) + np.asarray(layer.output_bias)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert layer.token_mixing.degenerate()


def test_a_study_refuses_a_model_whose_mixing_degenerates(tmp_path, capsys):
    study = write_study(tmp_path, "degenerate", datasets=["synthetic"], models=["mobilevit_xxs"], seeds=[0],
                        epochs=1, image_size=32, tracking="none",
                        overrides={"mobilevit_xxs": {"model.depths": [1, 1, 1]}})
    code, out, err = main(["study", str(study), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert f"{study}: models.mobilevit_xxs: mobilevit_xxs at 32 px: " in err
    assert "attention over 1 image token per sequence" in err and "smallest image size that works is 96 px" in err
    assert not (tmp_path / "out").exists()
    # The small-image option makes the same study load.
    study = write_study(tmp_path, "fixed", datasets=["synthetic"], models=["mobilevit_xxs"], seeds=[0], epochs=1,
                        image_size=32, tracking="none",
                        overrides={"mobilevit_xxs": {"model.depths": [1, 1, 1], "model.strides": [2, 2, 2, 1, 1]}})
    assert load_study(study).cells[0].model_args == (("depths", (1, 1, 1)), ("strides", (2, 2, 2, 1, 1)))


def test_a_single_run_of_a_degenerate_configuration_gets_a_one_line_warning():
    from benchbench.layers.mixing import degenerate_warning

    model = benchbench.create_model("mobilevit_xxs", num_classes=10, image_size=32)
    warning = degenerate_warning(model, "mobilevit_xxs", 32)
    assert warning.startswith("mobilevit_xxs at 32 px: ") and "mix nothing" in warning and "\n" not in warning
    fixed = benchbench.create_model("mobilevit_xxs", num_classes=10, image_size=32, strides=(2, 2, 2, 1, 1))
    assert degenerate_warning(fixed, "mobilevit_xxs", 32) is None
