"""The training recipe's precision and distribution paths: mixed precision and XLA runs, fp16 loss scaling,
and MirroredStrategy over two logical CPU devices (the multi-GPU path, exercised without a GPU)."""

import json

import numpy as np
import pytest

from support.cli import main, run_script


def run_dir(out):
    (only,) = [p for p in out.iterdir() if p.is_dir()]
    return only


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["precision=bf16", "precision=fp16", "jit_compile=true"])
def test_mixed_precision_and_xla_runs(setting, tmp_path, capsys):
    """In this process: a run restores the process-global precision policy when it ends."""
    import keras

    code, _, err = main(["run", "--model", "vit_tiny", "--dataset", "synthetic", "--epochs", "1", "--batch-size", "32",
                         "--set", "model.depth=1", "--set", "model.patch_size=8", "--set", setting, "--tracking",
                         "none", "--out", tmp_path], capsys)
    assert code == 0, err[-3000:]
    assert keras.mixed_precision.global_policy().name == "float32"
    record = json.loads((run_dir(tmp_path) / "run.json").read_text())
    assert np.isfinite(record["metrics"]["test_loss"]) and record["metrics"]["test_top1"] > 0.1
    key, value = setting.split("=")
    assert str(record["config"][key]).lower() == value


def distribute_check(tmp_path, model: str, options: dict, sides: tuple[str, ...] = ("mirrored", "none")) -> dict:
    result = run_script("distribute_check.py", tmp_path, model, json.dumps(options), ",".join(sides))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert [report[side]["replicas"] for side in sides] == [{"mirrored": 2, "none": 1}[side] for side in sides]
    return report


@pytest.mark.slow
def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    """The multi-GPU path (tf.distribute.MirroredStrategy), exercised on two logical CPU devices. Without
    dropout (whose masks differ per replica) two replicas train the same global batches to the same losses
    as one device, up to summation order."""
    report = distribute_check(tmp_path, "vit_tiny", {"depth": 1, "patch_size": 8, "drop_path_rate": 0.0})
    np.testing.assert_allclose(report["mirrored"]["loss"], report["none"]["loss"], rtol=1e-2)


@pytest.mark.slow
def test_mirrored_strategy_with_batch_norm(tmp_path):
    """ResNet-20: the fused BatchNorm updates its statistics per replica (as Keras' does) under the strategy; it
    trains (loss falls). (One device is the path every other run takes; attention under the strategy is the ViT
    test's. MobileViT, which has both, took 50-75 s here, most of it tracing under the strategy.)"""
    report = distribute_check(tmp_path, "resnet20", {}, sides=("mirrored",))
    loss = report["mirrored"]["loss"]
    assert np.isfinite(loss).all() and loss[1] < loss[0], report


def test_fp16_training_scales_the_loss():
    """Mixed float16 needs loss scaling against gradient underflow: Keras wraps the optimizer when compiling."""
    import keras

    from benchbench.data import get_dataset
    from benchbench.run.config import RunConfig
    from benchbench.run.recipe import build_training

    previous = keras.mixed_precision.global_policy()
    try:
        model, _ = build_training(RunConfig("shiftvit_keras", "synthetic", precision="fp16"), get_dataset("synthetic"),
                                  32, steps_per_epoch=10)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.layers[-1].dtype_policy.name == "float32"  # logits handed to the loss in float32


@pytest.mark.parametrize("scaling", ["lr", "none"])
def test_weight_decay_scaling_matches_numpy(scaling):
    """One AdamW step against NumPy: decay first (w * (1 - lr * wd) in Keras 3's and PyTorch's convention,
    w * (1 - wd) in TensorFlow Addons'), then Adam's bias-corrected step, which is lr * g / (|g| + eps) after
    one step."""
    import keras

    from benchbench.run.config import RunConfig
    from benchbench.run.recipe import _optimizer

    lr, wd = 1e-3, 0.05
    config = RunConfig("vit_tiny", "synthetic", learning_rate=lr, weight_decay=wd, weight_decay_scaling=scaling,
                       warmup_fraction=0.0, min_lr_ratio=1.0)  # a constant rate
    w0 = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    g = np.random.default_rng(1).normal(size=(4, 3)).astype("float32")
    optimizer = _optimizer(config, steps_per_epoch=10)
    w = keras.Variable(w0)
    optimizer.build([w])
    optimizer.apply_gradients([(g, w)])
    decay = lr * wd if scaling == "lr" else wd
    expected = w0 * (1 - decay) - lr * g / (np.abs(g) + optimizer.epsilon)
    np.testing.assert_allclose(np.asarray(w), expected, rtol=1e-5, atol=1e-7)
    assert float(optimizer.learning_rate) == pytest.approx(lr)  # the rate itself is untouched


def test_a_field_added_later_keeps_existing_cell_keys():
    """Cells are keyed by their config's hash: a field added since (weight_decay_scaling) enters the key only
    when set, so a study started before it resumes with every finished cell kept."""
    from benchbench.run.config import RunConfig

    assert RunConfig("vit_tiny", "synthetic").hash() == "a501b0edbcb7"  # the key before the field existed
    assert RunConfig("vit_tiny", "synthetic", weight_decay_scaling="none").hash() != "a501b0edbcb7"


@pytest.mark.parametrize("start", [0.0, 0.01])
def test_the_warm_up_starts_where_the_recipe_says(start):
    """Linear from warmup_start_ratio x the rate (the keras.io ShiftViT tutorial: 1e-5 for 1e-3) to the rate at
    the end of the warm-up, then cosine down to min_lr_ratio x the rate."""
    from benchbench.run.config import RunConfig
    from benchbench.run.recipe import _optimizer

    config = RunConfig("vit_tiny", "synthetic", epochs=10, learning_rate=1e-3, warmup_fraction=0.2,
                       warmup_start_ratio=start)
    schedule = _optimizer(config, steps_per_epoch=10)._learning_rate  # 100 steps, 20 of warm-up
    rates = [float(schedule(step)) for step in (0, 10, 20, 100)]
    assert rates == pytest.approx([start * 1e-3, (start + (1 - start) / 2) * 1e-3, 1e-3, 0.0], abs=1e-9)
