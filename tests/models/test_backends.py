"""The same models on another Keras backend: one member of each family under JAX, with TensorFlow refused
(model code needs keras.ops only), loading the TensorFlow-saved file with identical outputs, then a forward
pass and training steps."""

import json

import numpy as np
import pytest

import benchbench
from support.cli import run_script
from support.env import scrubbed_env
from support.models import images

pytest.importorskip("jax")

# ResNet-20 for the CNNs: its layers are ours (keras.applications' networks are Keras' to test on JAX), and small.
ONE_PER_FAMILY = ["vit_tiny", "shiftvit_t_light", "mobilevit_xxs", "resnet20", "swin_t"]
# Fewer blocks where a family has the option: every layer type stays, JAX compiles less (the backend is tested).
# Swin keeps two blocks in its first stage, the second with shifted windows and their mask, and one merging.
OPTIONS = {"vit_tiny": {"depth": 2}, "shiftvit_t_light": {"depths": [1, 1, 1, 1]},
           "mobilevit_xxs": {"depths": [1, 1, 1]},
           "swin_t": {"depths": [2, 1], "num_heads": [3, 6], "patch_size": 2, "window_size": 4}}


@pytest.mark.slow
def test_one_model_per_family_runs_under_jax(tmp_path):
    families = {benchbench.model_info(name).family for name in ONE_PER_FAMILY}
    assert families == {info.family for info in map(benchbench.model_info, benchbench.list_models())}
    for name in ONE_PER_FAMILY:
        options = OPTIONS.get(name, {})
        model = benchbench.create_model(name, num_classes=5, image_size=32, **options)
        (tmp_path / f"{name}_options.json").write_text(json.dumps(options))
        x = images(32, n=4)
        np.save(tmp_path / f"{name}_x.npy", x)
        np.save(tmp_path / f"{name}_y.npy", np.asarray(model(x, training=False)))
        model.save(tmp_path / f"{name}.keras")

    # XLA's CPU code generation without LLVM optimisation: compiles a third faster (JAX compiles every initializer,
    # forward pass and train step here, 60 -> 41 s), computes the same functions (the outputs are compared).
    env = scrubbed_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_backend_optimization_level=0")
    result = run_script("backend_check.py", tmp_path, *ONE_PER_FAMILY, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == "jax"
    assert report["tensorflow_modules"] == []  # every import of it was refused, and nothing needed one
    for name in ONE_PER_FAMILY:
        entry = report["models"][name]
        assert entry["load_max_abs_diff"] < 1e-3, (name, entry)
        assert entry["forward_finite"] and entry["forward_shape"] == [4, 5], (name, entry)
        assert all(np.isfinite(entry["losses"])) and entry["losses"][-1] < entry["losses"][0], (name, entry)
