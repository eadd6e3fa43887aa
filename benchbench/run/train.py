"""One run: spec -> data -> model -> fit -> evaluate -> record. Seeded, bitwise reproducible on CPU, resumable.

A run directory holds `state.json` and its checkpoints while it trains (see run/checkpoint.py), and at the
end `run.json` (the record) and `best.weights.h5` (Keras weights of the best validation epoch).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchbench import io, predictions
from benchbench.run import reuse
from benchbench.run.checkpoint import Checkpointer
from benchbench.run.config import RunConfig, validate
from benchbench.run.precision import resolve
from benchbench.run.recipe import distribution_strategy, precision_policy


class RunFailed(RuntimeError):
    """A run that cannot finish as configured (its loss diverged); the message starts with the reason's key."""


@dataclasses.dataclass
class Options:
    """How to run (not what: that is the RunConfig). See `execute` for each field."""

    out_dir: str = "runs"
    data_dir: str | None = None
    resume: bool = False
    rerun: bool = False
    verbose: int = 1
    tracking: str = "wandb"
    group: str | None = None
    job_type: str = "train"
    protocol: str | None = None
    on_epoch: Callable[[dict], None] | None = None
    sync_hint: bool = True
    callbacks: tuple = ()
    evaluate_test: bool = True
    distribute: str = "auto"
    costs: dict | None = None
    measure_costs: bool = False


def execute(config: RunConfig, **options: Any) -> dict:
    """Runs (or resumes) one training run and returns its record (also written to run.json).

    Options: `out_dir` (parent of the run directory), `data_dir` (TFDS), `resume` (continue an unfinished
    run directory), `verbose` (Keras' fit verbosity), `tracking` ("wandb" or "none"), `group` and `job_type`
    (W&B's: the study or search, and "train", "tune-trial", "confirm" or "bench") and `protocol` (the study's).
    `on_epoch(logs)` is called after each epoch's checkpoint is committed (studies print progress with it);
    `sync_hint=False` leaves the offline-W&B upload hint to the caller (a study prints one for all its runs).
    A finished run of the same configuration in `out_dir` is returned as it is, unless `rerun`: then the run
    trains again in a fresh directory beside it (NAME-rerunK). `callbacks` are Keras callbacks for `fit`; one
    that sets `model.stop_training` ends the run early (the record says `stopped_early`). `evaluate_test=False`
    never touches the test split (tuning).
    `costs`: the configuration's fresh-process costs (run/costs.py), which a study measured before the run: the
    record takes its FLOPs and inference speed from them instead of measuring them again.
    `distribute`: "auto" trains data-parallel with tf.distribute.MirroredStrategy when several GPUs are
    visible, "mirrored" over every visible GPU (or logical CPU device when there is none), "none" on one
    device; the batch size is the global batch, split across the replicas."""
    opts = Options(**{**options, "callbacks": tuple(options.get("callbacks", ()))})
    from benchbench.data import using_data_dir

    with using_data_dir(opts.data_dir):  # where a tfds:NAME data set is looked up, from the checks on
        validate(config)  # first: a bad precision must be a usage error, not a missing policy
        with precision_policy(config.precision):  # process-global: restored for the next run in this process
            return _execute(config, opts)


@dataclasses.dataclass
class _Prepared:
    """What the prepare step hands to training: data, model and where the run lives."""

    run_dir: Path
    data_dir: str | None
    image_size: int
    augment: str
    sizes: dict
    spec: Any
    examples: dict
    evaluation: dict
    steps_per_epoch: int
    strategy: Any
    model: Any
    optimizer: Any


def _execute(config: RunConfig, opts: Options) -> dict:
    from benchbench.data import get_dataset, resolve_data_dir
    from benchbench.measure import reset_peak_memory

    # 1. Prepare (the config is valid): data, model. Nothing is written before the model builds.
    data_dir = resolve_data_dir(opts.data_dir)
    get_dataset(config.dataset).require_present(data_dir)  # before any model is built: training never downloads
    run_dir = _fresh_dir(Path(opts.out_dir), config.run_name()) if opts.rerun else \
        Path(opts.out_dir) / config.run_name()
    record, damage = _finished_record(run_dir, config)
    if record is not None:  # the same command again: its result, not an error (--rerun trains it anew)
        return record
    exists = _unfinished_message(run_dir, config.epochs)
    if run_dir.exists() and not opts.resume:
        raise FileExistsError(exists)
    started = time.time()
    reset_peak_memory()
    run = _prepare(config, opts, run_dir, data_dir)
    # One process per run directory: a second `run` of the same config fails at once instead of writing into
    # the same files (the kernel drops the lock of a killed holder).
    with io.held(run_dir.parent / f".{run_dir.name}.lock", f"run directory {run_dir}"):
        if run_dir.exists() and not opts.resume:  # made by another process while this one prepared
            raise FileExistsError(exists)
        if damage and (run_dir / "run.json").exists():
            _set_aside(run_dir, damage)
        return _train(config, opts, run, started)


def _train(config: RunConfig, opts: Options, run: _Prepared, started: float) -> dict:
    from benchbench.measure import StepTimer

    run_dir = run.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    io.remove_leftovers(run_dir)  # what a killed writer left; the directory is this process's while it is locked

    # 2. Restore the last committed epoch, if this run was interrupted; a damaged one starts again.
    checkpoint = Checkpointer(run_dir, run.model, run.optimizer, started=started, config_hash=config.hash(),
                              epochs=config.epochs)
    with run.strategy.scope():
        damage = checkpoint.restore()
    if damage:
        _set_aside(run_dir, damage)
        checkpoint = Checkpointer(run_dir, run.model, run.optimizer, started=started, config_hash=config.hash(),
                                  epochs=config.epochs)
    tracker = _tracker(config, opts, run)

    # 3. Fit: one call over all remaining epochs. Epoch e's batches depend only on (seed, e) (see
    # data/pipeline.py), and a fit call per epoch would cost ~0.1 s of set-up each, 10 % of a digits epoch.
    timer = StepTimer()
    try:
        _fit(config, opts, run, checkpoint, tracker, timer, started)
    except RunFailed:
        tracker.finish({"failed": True}, exit_code=1)
        raise

    # 4. Finalise: best weights, test evaluation, costs, the record; then drop the checkpoints.
    record = _finalise(config, opts, run, checkpoint, timer)
    tracker.log_outcome(run_dir, run.model)
    tracker.finish(_summary(record))
    checkpoint.clean_up()
    return record


def finished(config: RunConfig, out_dir: str | Path) -> dict | None:
    """The record of this configuration's run in `out_dir` if it finished already, else None."""
    return _finished_record(Path(out_dir) / config.run_name(), config)[0]


def _fresh_dir(out_dir: Path, name: str) -> Path:
    """`--rerun`: NAME-rerun1, NAME-rerun2, ...: the first that does not exist."""
    k = 1
    while (out_dir / f"{name}-rerun{k}").exists():
        k += 1
    return out_dir / f"{name}-rerun{k}"


def _unfinished_message(run_dir: Path, epochs: int) -> str:
    """What to do with a run directory that holds no finished run of this configuration."""
    from benchbench.run.checkpoint import committed_epoch

    epoch = committed_epoch(run_dir)
    done = "" if epoch is None else f" ({epoch} of {epochs} epochs done)"
    return (f"{run_dir} holds an unfinished run{done}: pass --resume to continue it, or --rerun to train again in a "
            "fresh directory")


def _finished_record(run_dir: Path, config: RunConfig) -> tuple[dict | None, str | None]:
    """(the record of a run that finished already, None) or (None, what is wrong with its run.json: one that
    does not parse or belongs to another configuration is set aside, and the run starts again)."""
    path = run_dir / "run.json"
    if not path.exists():
        return None, None
    try:
        record = json.loads(path.read_text())
        if record["config_hash"] == config.hash():
            return record, None
        return None, f"run.json belongs to another configuration (hash {record['config_hash']!r})"
    except (OSError, ValueError, KeyError, TypeError) as error:
        return None, f"run.json is unreadable ({type(error).__name__})"


def _set_aside(run_dir: Path, damage: str) -> None:
    """Moves a damaged run directory's files into a `damaged-<time>` folder inside it (kept for a look, never
    read again) and says so on stderr; the run then starts from epoch 0."""
    aside = run_dir / f"damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    aside.mkdir()
    for item in run_dir.iterdir():
        if item != aside and not item.name.startswith("damaged-") and item.name != "wandb":
            item.rename(aside / item.name)
    print(f"benchbench: warning: {run_dir}: {damage}; starting this run again from epoch 0 (the damaged files "
          f"are in {aside.name}/)", file=sys.stderr, flush=True)


def _prepare(config: RunConfig, opts: Options, run_dir: Path, data_dir: str | None) -> _Prepared:
    import tensorflow as tf

    from benchbench.data import get_dataset
    from benchbench.data.pipeline import eval_batches
    from benchbench.layers.mixing import degenerate_warning

    spec = get_dataset(config.dataset)
    image_size = config.image_size or spec.default_image_size
    sizes = spec.split_sizes(config.val_size)
    steps_per_epoch = sizes["train"] // config.batch_size
    reuse.set_seed(config, image_size, steps_per_epoch)  # keras.utils.set_random_seed, kind to a kept model
    tf.config.experimental.enable_op_determinism()
    examples = {split: spec.load(split, data_dir, config.val_size) for split in ("train", "val", "test")}
    if spec.cache_in_memory:  # decoded once, in the first epoch (a large image folder decodes every epoch)
        examples = {split: ds.cache() for split, ds in examples.items()}
    evaluation = {split: eval_batches(examples[split], image_size=image_size, batch_size=config.batch_size,
                                      num_classes=spec.num_classes) for split in ("val", "test")}
    strategy = distribution_strategy(opts.distribute)
    # Under the strategy's scope: variables, optimizer state and metrics live on every replica.
    model, optimizer = reuse.build(config, spec, image_size, steps_per_epoch, strategy)
    if warning := degenerate_warning(model, config.model, image_size):
        print(f"benchbench: warning: {warning}", file=sys.stderr, flush=True)
    return _Prepared(run_dir=run_dir, data_dir=data_dir, image_size=image_size,
                     augment=config.augment or spec.augment, sizes=sizes, spec=spec, examples=examples,
                     evaluation=evaluation, steps_per_epoch=steps_per_epoch, strategy=strategy, model=model,
                     optimizer=optimizer)


def _tracker(config: RunConfig, opts: Options, run: _Prepared):
    from benchbench.measure import environment
    from benchbench.models import count_params, model_info
    from benchbench.tracking import make_tracker, wandb_run_id

    family = model_info(config.model).family
    # Top-level keys W&B groups runs by (model, family, dataset, seed, protocol, config_hash): "group by model"
    # draws each model's mean and spread over seeds.
    keys = {**config.resolved(), "image_size": run.image_size, "augment": run.augment, "family": family,
            "resolved_precision": resolve(config.precision),
            "config_hash": config.hash(), "protocol": opts.protocol, "study": opts.group,
            "params": count_params(run.model), "environment": environment()}
    return make_tracker(opts.tracking, run_id=wandb_run_id(run.run_dir.name, run.run_dir),
                        name=f"{config.model}/{config.dataset}/{config.seed}", run_dir=run.run_dir, group=opts.group,
                        job_type=opts.job_type, sync_hint=opts.sync_hint, tags=[config.dataset, family], config=keys)


def _fit(config: RunConfig, opts: Options, run: _Prepared, checkpoint: Checkpointer, tracker, timer,
         started: float) -> None:
    import keras

    from benchbench.data.pipeline import training_epochs

    timing = checkpoint.timing

    epoch_now = [0]

    def check_loss(step: int, logs: dict) -> None:
        # Every step, so a diverging run stops at once: no epoch of NaNs, no validation pass, no checkpoint of
        # NaN weights (the last good epoch stays the committed one).
        if not math.isfinite(float(logs["loss"])):
            raise RunFailed(f"nan_loss: the training loss became NaN or infinite at step {step + 1} of epoch "
                            f"{epoch_now[0]}; the run stopped there (lower the learning rate, or train in fp32)")

    def end_of_epoch(epoch: int, fit_logs: dict) -> None:
        start = time.time()
        logs = {key: float(value) for key, value in fit_logs.items()}
        logs["epoch"] = epoch + 1
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(run.optimizer.learning_rate))
        checkpoint.end_of_epoch(epoch, logs)
        tracker.log_epoch(logs)
        if opts.on_epoch:
            opts.on_epoch(logs)
        timing["bookkeeping"] += time.time() - start

    first_epoch = checkpoint.state["epoch"]
    train = training_epochs(run.examples["train"], run.sizes["train"], first_epoch=first_epoch,
                            epochs=config.epochs, image_size=run.image_size, batch_size=config.batch_size,
                            num_classes=run.spec.num_classes, seed=config.seed, augment=run.augment)
    timing["setup"] += time.time() - started
    fit_start, bookkeeping_before = time.time(), timing["bookkeeping"]
    if first_epoch < config.epochs:
        # Callbacks run in order: the caller's (a pruner may set stop_training) see the epoch before ours
        # records it; Keras stops after the epoch in which one sets model.stop_training.
        run.model.fit(train, epochs=config.epochs, initial_epoch=first_epoch, steps_per_epoch=run.steps_per_epoch,
                      validation_data=run.evaluation["val"], shuffle=False, verbose=opts.verbose,
                      callbacks=[timer, keras.callbacks.LambdaCallback(
                          on_epoch_begin=lambda epoch, logs=None: epoch_now.__setitem__(0, epoch + 1),
                          on_train_batch_end=check_loss), *opts.callbacks,
                          keras.callbacks.LambdaCallback(on_epoch_end=end_of_epoch)])
    timing["fit"] += time.time() - fit_start - (timing["bookkeeping"] - bookkeeping_before)


def _finalise(config: RunConfig, opts: Options, run: _Prepared, checkpoint: Checkpointer, timer) -> dict:
    from benchbench.measure import environment, peak_memory
    from benchbench.models import count_params

    final_start = time.time()
    state, model = checkpoint.state, run.model
    model.set_weights(checkpoint.best)
    io.save_weights(model, run.run_dir / "best.weights.h5")
    test = (_test_outcome(model, run, config) if opts.evaluate_test
            else dict.fromkeys(("top1", "top5", "loss", "nll", "ece", "brier")))
    step = timer.median_step_seconds()
    record = {
        "run_id": run.run_dir.name,  # config.run_name(), or its -rerunK directory
        "config": config.resolved(),
        "config_hash": config.hash(),
        "seed": config.seed,
        "resolved": {"image_size": run.image_size, "augment": run.augment, "precision": resolve(config.precision),
                     "splits": run.sizes, "data": run.spec.describe(), "weights": _weights(config, model),
                     "steps_per_epoch": run.steps_per_epoch, "data_dir": run.data_dir},
        "metrics": {"test_top1": test["top1"], "test_top5": test["top5"], "test_loss": test["loss"],
                    "test_nll": test["nll"], "test_ece": test["ece"], "test_brier": test["brier"],
                    "best_val_top1": state["best_val_top1"], "best_epoch": state["best_epoch"],
                    "history": state["history"]},
        "predictions": predictions.FILE if opts.evaluate_test else None,
        "stopped_early": state["epoch"] < config.epochs,
        "params": count_params(model),
        "train_images_per_second": config.batch_size / step if step else None,
        "train_step_seconds_median": step,
        **_model_costs(config, model, run.image_size, opts.costs, opts.measure_costs),
        **peak_memory(),
        "wall_seconds": checkpoint.wall_seconds(),
        "timing_seconds": {**checkpoint.timing, "final": time.time() - final_start},
        "replicas": run.strategy.num_replicas_in_sync,
        "environment": environment(),
    }
    io.write_json(run.run_dir / "run.json", record)
    return record


def _weights(config: RunConfig, model) -> dict | None:
    """Where the run started from: None (from scratch) or the file, its digest and what became of its head."""
    if config.weights is None:
        return None
    from benchbench.models.weights import digest, head_status

    return {"path": config.weights, "sha256": digest(config.weights), "head": head_status(model, config.weights)}


def _test_outcome(model, run: _Prepared, config: RunConfig) -> dict:
    """One pass over the test set: writes its per-example predictions beside run.json and returns the test
    metrics computed from them (top-1, top-5, the training loss, NLL, ECE, Brier); a second pass through
    `model.evaluate` would cost a trace and the pass again for the same numbers."""
    import numpy as np

    from benchbench.data.pipeline import padded_images

    labels = np.concatenate([np.argmax(y, axis=-1) for _, y in run.evaluation["test"].as_numpy_iterator()])
    logits = model.predict(padded_images(run.evaluation["test"], config.batch_size), verbose=0)[:len(labels)]
    arrays = predictions.summarise(logits, labels)
    predictions.save(run.run_dir / predictions.FILE, arrays)
    return {**predictions.metrics(arrays), "loss": predictions.cross_entropy(logits, labels, config.label_smoothing)}


_flops_by_key: dict[str, float] = {}  # a model configuration's GFLOPs, counted once per process (seeds share it)


def _model_costs(config: RunConfig, model, image_size: int, probed: dict | None, thorough: bool = False) -> dict:
    """The model's FLOPs and inference speed: from the study's fresh-process probe when it ran one (what the
    leaderboard shows anyway), else counted here (FLOPs once per configuration) and timed quickly (3 x 20 ms),
    or as the probe times them when `thorough` (this run is its configuration's first, in a fresh process, and
    measures the costs for the study: run/costs.py's from_run)."""
    from benchbench.measure import forward_flops, inference_speed
    from benchbench.run import costs

    if probed:
        return {"gflops": probed["gflops"], "inference_latency_ms": probed["inference_latency_ms"],
                "inference_images_per_second": probed["inference_images_per_second"], "costs_source": "fresh process"}
    key = costs.key(config)
    if key not in _flops_by_key:
        _flops_by_key[key] = forward_flops(model, image_size) / 1e9
    if thorough:
        return {"gflops": _flops_by_key[key], "costs_source": "fresh process",
                **inference_speed(model, image_size, config.batch_size)}
    return {"gflops": _flops_by_key[key], "costs_source": "in run",
            **inference_speed(model, image_size, config.batch_size, target_seconds=0.02, repeats=3)}


def _summary(record: dict) -> dict:
    """The W&B summary: the final metrics and costs (the history is logged per epoch already)."""
    return {**{k: v for k, v in record["metrics"].items() if k != "history" and v is not None},
            "stopped_early": record["stopped_early"],
            **{k: record[k] for k in ("params", "gflops", "train_images_per_second", "inference_latency_ms",
                                      "inference_images_per_second", "peak_memory_mb", "wall_seconds")}}
