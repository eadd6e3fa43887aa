"""The public registry API: listing, creating, extending with one decorator, and rejecting bad input."""

import keras
import pytest

import benchbench
from benchbench.models import MODELS
from benchbench.registry import UnknownNameError


def test_list_models_filters_with_fnmatch():
    assert benchbench.list_models("vit_*") == ["vit_keras", "vit_small", "vit_tiny"]
    assert benchbench.list_models("mobilevit_x*") == ["mobilevit_xs", "mobilevit_xxs"]
    assert benchbench.list_models("nothing*") == []
    assert benchbench.list_models() == sorted(benchbench.list_models())


def test_every_model_has_a_family_and_a_reference():
    for name in benchbench.list_models():
        info = benchbench.model_info(name)
        assert info.family in {"vit", "shiftvit", "mobilevit", "swin", "cnn"}
        assert info.paper and info.num_classes >= 2 and info.image_size >= 32


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownNameError, match="did you mean mobilevit_xxs"):
        benchbench.create_model("mobilevit_xxx", num_classes=10, image_size=64)
    assert issubclass(UnknownNameError, ValueError)


def test_register_model_is_one_decorator():
    @benchbench.register_model(family="cnn", paper="a test double", num_classes=3, image_size=32)
    def tiny_test_cnn(*, num_classes, image_size, **overrides):
        inputs = keras.Input((image_size, image_size, 3))
        x = keras.layers.GlobalAveragePooling2D()(inputs)
        return keras.Model(inputs, keras.layers.Dense(num_classes)(x))

    try:
        assert "tiny_test_cnn" in benchbench.list_models("tiny_*")
        model = benchbench.create_model("tiny_test_cnn", num_classes=3, image_size=32)
        assert model.output_shape == (None, 3)
        with pytest.raises(ValueError, match="registered twice"):
            benchbench.register_model(family="cnn", paper="again")(tiny_test_cnn)
    finally:
        MODELS._entries.pop("tiny_test_cnn")


@pytest.mark.parametrize("name,kwargs,message", [
    ("vit_tiny", dict(image_size=30), "not divisible by the patch size 4"),
    ("vit_small", dict(image_size=224, patch_size=15), "not divisible by the patch size 15"),
    ("vit_keras", dict(image_size=32, patch_size=7), "image size 72 is not divisible by the patch size 7"),
    ("mobilevit_xxs", dict(image_size=48), "divisible by 32"),
    ("mobilevit_xs", dict(image_size=64, num_heads=5), "not divisible by num_heads 5"),
    ("shiftvit_t", dict(image_size=30), "not divisible by the patch size 4"),
    ("shiftvit_t_light", dict(image_size=16), "too small for 4 stages"),
    ("shiftvit_s", dict(image_size=32, norm="ln"), "norm must be 'gn1' or 'bn'"),
    ("resnet50v2", dict(image_size=16), "minimum of 32 px"),
    ("resnet20", dict(image_size=32, depth=21), "depth must be 6n \\+ 2"),
    ("vit_tiny", dict(image_size=32, dropuot=0.1), "has no option 'dropuot'"),
    ("convnext_tiny", dict(image_size=32, depth=3), "has no option 'depth'"),
    ("vit_tiny", dict(image_size=32, num_classes=1), "num_classes must be an integer >= 2"),
    ("vit_tiny", dict(image_size=32.0), "image_size must be an integer"),
])
def test_invalid_configurations_fail_at_create_model(name, kwargs, message):
    kwargs = {"num_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        benchbench.create_model(name, **kwargs)


def test_overrides_reach_the_architecture():
    model = benchbench.create_model("vit_tiny", num_classes=10, image_size=32, patch_size=8, depth=2)
    assert model.get_layer("pos_embed").output.shape == (None, 17, 192)  # (32 / 8)^2 patches + [class]
    assert len([layer for layer in model.layers if layer.name.endswith("_attn")]) == 2
    # Default patch: 4 up to 64 px, 16 above.
    def tokens(size):
        model = benchbench.create_model("vit_tiny", num_classes=10, image_size=size)
        return model.get_layer("pos_embed").output.shape[1]

    assert tokens(64) == 257
    assert tokens(96) == 37


def test_cnn_bn_momentum_reaches_every_batchnorm():
    import keras

    def momenta(model):
        return {layer.momentum for layer in model.get_layer("resnet50v2").layers
                if isinstance(layer, keras.layers.BatchNormalization)}

    assert momenta(benchbench.create_model("resnet50v2", num_classes=10, image_size=32)) == {0.99}
    assert momenta(benchbench.create_model("resnet50v2", num_classes=10, image_size=32, bn_momentum=0.9)) == {0.9}
    with pytest.raises(ValueError, match="convnext_tiny has no option 'bn_momentum'"):
        benchbench.create_model("convnext_tiny", num_classes=10, image_size=32, bn_momentum=0.9)
