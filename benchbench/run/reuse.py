"""The seeds of one configuration share a traced model within a process.

Tracing a model's train and test steps costs 4-18 s on 2 cores (MobileViT-XXS at 32 px: 14 s for the train step,
3.5 s for the test step's two batch shapes; ResNet-20: 4.6 s), up to a fifth of a demo cell. A study worker often
runs seeds of one configuration one after another, so the model built for one seed is kept, and a run of the
next seed gets it back with every variable (weights, batch-norm statistics, dropout generator states)
overwritten by those of a model freshly built with the new seed, the optimizer's state zeroed as a new
optimizer's is, and the metrics reset: Keras then runs the functions it traced already. A fresh build costs a
tenth of a trace. The results are bitwise those of a fresh process (tests/study compare a reusing worker with
fresh ones)."""

from __future__ import annotations

import json

from benchbench.run.config import RunConfig
from benchbench.run.recipe import build_training

_kept: tuple | None = None  # (key, model, optimizer) of the last model built in this process


def set_seed(config: RunConfig, image_size: int, steps_per_epoch: int) -> None:
    """keras.utils.set_random_seed(config.seed), except for TensorFlow's own global seed when the kept model is
    about to be reused: setting that clears TensorFlow's kernel cache, and the traced functions are then
    instantiated again (MobileViT-XXS's seed 1, 2 epochs on digits: fit 19 s instead of 5.8 s; 29 s fresh).
    Nothing here draws from TensorFlow's global seed: the data pipeline's random ops are stateless with
    explicit seeds, and the models' initialisers and dropout draw from Keras' seed generators, which this
    resets. A run that reuses therefore gets the same numbers as a fresh process (tests/study compare them)."""
    from unittest import mock

    import keras

    if _kept is None or _kept[0] != _key(config, image_size, steps_per_epoch):
        keras.utils.set_random_seed(config.seed)
        return
    with mock.patch("tensorflow.random.set_seed"):
        keras.utils.set_random_seed(config.seed)


def build(config: RunConfig, spec, image_size: int, steps_per_epoch: int, strategy):
    """build_training's (model, optimizer), traced already when the last model built here had the same
    configuration but for the seed. Call it under the run's seed (keras.utils.set_random_seed) and outside the
    strategy's scope."""
    import tensorflow as tf

    global _kept
    with strategy.scope():
        model, optimizer = build_training(config, spec, image_size, steps_per_epoch)
    key = _key(config, image_size, steps_per_epoch)
    if strategy is not tf.distribute.get_strategy():  # a replicated model is not worth the care: build afresh
        _kept = None
        return model, optimizer
    if _kept is not None and _kept[0] == key and _same_layout(_kept[1].variables, model.variables):
        _, kept, kept_optimizer = _kept
        for target, source in zip(kept.variables, model.variables):
            target.assign(source)
        for variable in kept_optimizer.variables:
            variable.assign(tf.zeros_like(variable))
        kept.reset_metrics()
        return kept, kept_optimizer
    _kept = (key, model, optimizer)
    return model, optimizer


def forget() -> None:
    """Drops the kept model (its memory, and any state a failed run left in it)."""
    global _kept
    _kept = None


def sibling_key(resolved: dict) -> str:
    """A run's resolved config but its seed: the runs that one traced model serves (a study's workers claim
    cells by it, study/queue.py)."""
    return json.dumps({**resolved, "seed": None}, sort_keys=True, default=str)


def _key(config: RunConfig, image_size: int, steps_per_epoch: int) -> str:
    return f"{sibling_key(config.resolved())} {image_size} px, {steps_per_epoch} steps"


def _same_layout(kept: list, fresh: list) -> bool:
    """The same variables in the same order (by shape and dtype: Keras numbers the names of layers it names
    itself per process, so a second build's paths differ)."""
    return len(kept) == len(fresh) and all(tuple(a.shape) == tuple(b.shape) and a.dtype == b.dtype
                                           for a, b in zip(kept, fresh))
