"""The training recipe in one place: precision policy, model, AdamW with warm-up + cosine decay, loss and
metrics, and the distribution strategy. Shared by runs and `benchbench bench --overhead`'s bare fit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from benchbench.registry import check
from benchbench.run.config import RunConfig

# The Keras dtype policy of each precision: mixed precision computes in 16 bits and keeps float32 variables.
POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
DISTRIBUTE = ("auto", "mirrored", "none")


@contextlib.contextmanager
def precision_policy(precision: str) -> Iterator[None]:
    """Sets the global Keras dtype policy for the body, and restores the previous one after: the policy is
    process-global, and the next run (or test) in this process must find it as it was."""
    import keras

    from benchbench.run.precision import resolve

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(POLICIES[resolve(precision)])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def build_training(config: RunConfig, spec, image_size: int, steps_per_epoch: int):
    """The compiled model and its optimizer. Sets the config's precision as the global Keras policy: callers
    that must leave it as they found it run this inside `precision_policy`."""
    import keras

    from benchbench.models import create_model
    from benchbench.run.precision import resolve

    precision = resolve(config.precision)
    keras.mixed_precision.set_global_policy(POLICIES[precision])
    model = create_model(config.model, num_classes=spec.num_classes, image_size=image_size, **dict(config.model_args))
    if precision != "fp32":  # compute in 16 bits, but hand float32 logits to loss and metrics
        logits = keras.layers.Activation("linear", dtype="float32", name="logits_float32")(model.outputs[0])
        model = keras.Model(model.inputs, logits, name=model.name)
    optimizer = _optimizer(config, steps_per_epoch)
    # No decay on biases, norm scales and embeddings' 1-D parameters (timm, DeiT convention).
    optimizer.exclude_from_weight_decay(var_list=[v for v in model.trainable_variables if len(v.shape) <= 1])
    top_k = min(5, spec.num_classes)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
                  metrics=[keras.metrics.CategoricalAccuracy(name="top1"),
                           keras.metrics.TopKCategoricalAccuracy(k=top_k, name="top5")],
                  jit_compile=config.jit_compile)
    # The optimizer's state is made now, not inside the first traced step: variables created while tracing
    # make tf.function trace the whole step a second time (about a second per run for a small model).
    model.optimizer.build(model.trainable_variables)
    return model, optimizer


def _optimizer(config: RunConfig, steps_per_epoch: int):
    """AdamW with a linear warm-up over `warmup_fraction` of the steps (from warmup_start_ratio x the rate), then
    cosine decay to min_lr_ratio x the rate."""
    import keras

    from benchbench.run.optimizer import AdamW, AdamWUnscaledDecay

    total_steps = steps_per_epoch * config.epochs
    warmup_steps = int(config.warmup_fraction * total_steps)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.warmup_start_ratio * config.learning_rate if warmup_steps else config.learning_rate,
        max(1, total_steps - warmup_steps),
        alpha=config.min_lr_ratio, warmup_target=config.learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps)
    adamw = AdamW if config.weight_decay_scaling == "lr" else AdamWUnscaledDecay
    return adamw(schedule, weight_decay=config.weight_decay, beta_1=config.beta_1, beta_2=config.beta_2)


def distribution_strategy(distribute: str):
    """The tf.distribute strategy for `execute(distribute=...)`; the default (one-device) strategy for none."""
    import tensorflow as tf

    check(distribute in DISTRIBUTE, f"distribute must be one of {', '.join(DISTRIBUTE)}, got {distribute!r}")
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if distribute == "mirrored" or (distribute == "auto" and len(gpus) > 1):
        devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()
