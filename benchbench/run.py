"""One run: spec -> data -> model -> fit -> evaluate -> record. Seeded, bitwise reproducible on CPU, resumable.

A run directory holds `state.json` (the commit point, written last and atomically), the epoch checkpoint it
names (model weights, optimizer state: `epochNNNN.npz`, written when the time since the last one is 100x its
cost, see CHECKPOINT_BUDGET), the best-validation weights (`best.npz`), and at the end `run.json` and
`best.weights.h5` (Keras weights of the best epoch).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from benchbench.registry import check

@dataclasses.dataclass(frozen=True)
class RunConfig:
    model: str
    dataset: str
    seed: int = 0
    epochs: int = 10
    batch_size: int = 64
    image_size: int | None = None  # None: the dataset's default training size
    # Recipe: AdamW, linear warm-up then cosine decay (keras.io ShiftViT / the lecture).
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.1
    min_lr_ratio: float = 0.0
    beta_1: float = 0.9
    beta_2: float = 0.999
    label_smoothing: float = 0.0
    augment: str | None = None  # None: the dataset's default
    val_size: int | None = None  # None: the dataset's default
    precision: str = "fp32"  # fp32 | bf16 | fp16 (mixed precision)
    jit_compile: bool = False
    model_args: tuple[tuple[str, Any], ...] = ()  # model.<key>=<value> overrides, sorted

    def resolved(self) -> dict:
        return {**dataclasses.asdict(self), "model_args": dict(self.model_args)}

    @classmethod
    def from_resolved(cls, resolved: dict) -> "RunConfig":
        """The inverse of `resolved()`, also after a JSON round trip (lists come back as tuples)."""
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in resolved.get("model_args", {}).items()}
        return cls(**{**resolved, "model_args": tuple(sorted(args.items()))})

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.resolved(), sort_keys=True).encode()).hexdigest()[:12]

    def run_name(self) -> str:
        return f"{self.model}_{self.dataset}_s{self.seed}_{self.hash()}"


def parse_value(raw: str, kind: Any) -> Any:
    """Parses a --set value for a field of the given annotation string."""
    kind = str(kind)
    if raw.lower() in ("none", "null") and "None" in kind and not kind.startswith("str"):
        return None  # (a string field keeps "none": it is a value there, e.g. augment=none)
    if kind.startswith("bool"):
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("float"):
        return float(raw)
    return raw


SETTABLE = {f.name: f.type for f in dataclasses.fields(RunConfig) if f.name not in ("model", "dataset", "model_args")}


def with_overrides(config: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """Applies typed overrides: run config fields, and `model.<option>` for the model's own options.

    Unknown keys and values of the wrong type raise ValueError naming the key (study files use this directly;
    `--set` parses its strings first)."""
    changes: dict[str, Any] = {}
    model_args = dict(config.model_args)
    for key, value in overrides.items():
        if key.startswith("model."):
            model_args[key[len("model."):]] = tuple(value) if isinstance(value, list) else value
            continue
        if key not in SETTABLE:
            raise ValueError(f"unknown key {key!r}; valid keys: {', '.join(sorted(SETTABLE))}, or model.<option>")
        if not _type_matches(value, str(SETTABLE[key])):
            raise ValueError(f"{key} must be of type {SETTABLE[key]}, got {value!r}")
        changes[key] = float(value) if str(SETTABLE[key]).startswith("float") and value is not None else value
    return dataclasses.replace(config, **changes, model_args=tuple(sorted(model_args.items())))


def _type_matches(value: Any, kind: str) -> bool:
    if value is None:
        return "None" in kind
    if isinstance(value, bool):
        return kind.startswith("bool")
    if isinstance(value, int):
        return kind.startswith(("int", "float"))
    if isinstance(value, float):
        return kind.startswith("float")
    return isinstance(value, str) and kind.startswith("str")


def apply_sets(config: RunConfig, assignments: list[str]) -> RunConfig:
    """Applies --set KEY=VALUE strings; unknown keys and unparsable values raise ValueError naming the key."""
    overrides: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        if key.startswith("model."):
            overrides[key] = parse_literal(raw)
        elif key not in SETTABLE:
            raise ValueError(f"--set: unknown key {key!r}; valid keys: {', '.join(sorted(SETTABLE))}, or model.<option>")
        else:
            try:
                overrides[key] = parse_value(raw, SETTABLE[key])
            except ValueError as error:
                raise ValueError(f"--set {key}: {error}") from None
    return with_overrides(config, overrides)


def parse_literal(raw: str) -> Any:
    """A Python literal if it parses as one (numbers, tuples), else true/false, else the string itself."""
    import ast

    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return {"true": True, "false": False}.get(raw.lower(), raw)


def validate(config: RunConfig) -> None:
    """Usage-level checks that need no data and no model."""
    from benchbench.data import get_dataset
    from benchbench.data.pipeline import AUGMENTATIONS
    from benchbench.models import model_info

    model_info(config.model)
    spec = get_dataset(config.dataset)
    check(config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}")
    check(config.batch_size >= 1, f"batch_size must be >= 1, got {config.batch_size}")
    check(config.learning_rate > 0, f"learning_rate must be > 0, got {config.learning_rate}")
    check(0 <= config.warmup_fraction < 1, f"warmup_fraction must be in [0, 1), got {config.warmup_fraction}")
    check(0 <= config.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {config.label_smoothing}")
    check(config.precision in ("fp32", "bf16", "fp16"), f"precision must be fp32, bf16 or fp16, got {config.precision!r}")
    check(config.augment is None or config.augment in AUGMENTATIONS,
          f"augment must be one of {', '.join(AUGMENTATIONS)}, got {config.augment!r}")
    if config.val_size is not None:
        spec.check_val_size(config.val_size)
    check(spec.split_sizes(config.val_size)["train"] >= config.batch_size,
          f"batch_size {config.batch_size} exceeds the {spec.name} training split")


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _atomic_save_weights(model, path: Path) -> None:
    tmp = path.with_name(".tmp.weights.h5")
    model.save_weights(tmp)
    os.replace(tmp, path)


def _atomic_save_arrays(arrays: list, path: Path) -> None:
    import numpy as np

    tmp = path.with_name(f".tmp{path.suffix}")
    with open(tmp, "wb") as f:
        np.savez(f, *arrays)
    os.replace(tmp, path)


def _load_arrays(path: Path) -> list:
    import numpy as np

    with np.load(path) as archive:
        return [archive[f"arr_{i}"] for i in range(len(archive.files))]


def _rng_variables(model) -> list:
    # Keras' save/load_weights skip SeedGenerator states (dropout, stochastic depth), so the run checkpoints
    # them itself: without them a resumed run would draw different masks than an uninterrupted one.
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


# Where a run's wall time goes: data loading and model building; the fit calls; per-epoch checkpoints, state
# and tracking; the final test evaluation and cost measurements (FLOPs, latency).
TIMING = ("setup", "fit", "bookkeeping")
CHECKPOINT_BUDGET = 0.01  # the share of training time checkpoints may take


def build_training(config: RunConfig, spec, image_size: int, steps_per_epoch: int):
    """The compiled model and its optimizer for a run: the recipe (AdamW, warm-up + cosine, label smoothing,
    mixed precision) in one place, shared by the runner and `benchbench bench --overhead`'s bare fit."""
    import keras

    from benchbench.models import create_model

    policy = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}[config.precision]
    keras.mixed_precision.set_global_policy(policy)
    model = create_model(config.model, num_classes=spec.num_classes, image_size=image_size, **dict(config.model_args))
    if policy != "float32":  # mixed precision: compute in 16 bits, but hand float32 logits to loss and metrics
        logits = keras.layers.Activation("linear", dtype="float32", name="logits_float32")(model.outputs[0])
        model = keras.Model(model.inputs, logits, name=model.name)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = int(config.warmup_fraction * total_steps)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup_steps else config.learning_rate, max(1, total_steps - warmup_steps),
        alpha=config.min_lr_ratio, warmup_target=config.learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, beta_1=config.beta_1,
                                       beta_2=config.beta_2)
    # No decay on biases, norm scales and embeddings' 1-D parameters (timm, DeiT convention).
    optimizer.exclude_from_weight_decay(var_list=[v for v in model.trainable_variables if len(v.shape) <= 1])
    top_k = min(5, spec.num_classes)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
                  metrics=[keras.metrics.CategoricalAccuracy(name="top1"),
                           keras.metrics.TopKCategoricalAccuracy(k=top_k, name="top5")],
                  jit_compile=config.jit_compile)
    return model, optimizer


DISTRIBUTE = ("auto", "mirrored", "none")


def distribution_strategy(distribute: str):
    """The tf.distribute strategy for `execute(distribute=...)`; the default (one-device) strategy for none."""
    import tensorflow as tf

    check(distribute in DISTRIBUTE, f"distribute must be one of {', '.join(DISTRIBUTE)}, got {distribute!r}")
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if distribute == "mirrored" or (distribute == "auto" and len(gpus) > 1):
        devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def execute(config: RunConfig, *, out_dir: str = "runs", data_dir: str | None = None, resume: bool = False,
            verbose: int = 1, tracking: str = "wandb", group: str | None = None, on_epoch=None,
            sync_hint: bool = True, callbacks: tuple = (), evaluate_test: bool = True,
            distribute: str = "auto") -> dict:
    """Runs (or resumes) one training run and returns its record (also written to run.json).

    `on_epoch(logs)` is called after each epoch's checkpoint is committed (studies print progress with it);
    `sync_hint=False` leaves the offline-W&B upload hint to the caller (a study prints one for all its runs).
    `callbacks` are Keras callbacks for every epoch's `fit`; one that sets `model.stop_training` ends the run
    early (the record says `stopped_early`). `evaluate_test=False` never touches the test split (tuning).
    `distribute`: "auto" trains data-parallel with tf.distribute.MirroredStrategy when several GPUs are
    visible, "mirrored" over every visible GPU (or logical CPU device when there is none), "none" on one device;
    the batch size is the global batch, split across the replicas."""
    import keras

    previous_policy = keras.mixed_precision.global_policy()
    try:
        return _execute(config, out_dir=out_dir, data_dir=data_dir, resume=resume, verbose=verbose,
                        tracking=tracking, group=group, on_epoch=on_epoch, sync_hint=sync_hint,
                        callbacks=tuple(callbacks), evaluate_test=evaluate_test, distribute=distribute)
    finally:  # the precision policy is process-global: leave it as we found it for the next run
        keras.mixed_precision.set_global_policy(previous_policy)


def _execute(config: RunConfig, *, out_dir: str, data_dir: str | None, resume: bool, verbose: int, tracking: str,
             group: str | None, on_epoch, sync_hint: bool, callbacks: tuple,
             evaluate_test: bool, distribute: str) -> dict:
    import keras
    import tensorflow as tf

    from benchbench.data import get_dataset, resolve_data_dir
    from benchbench.data.pipeline import eval_batches, training_epochs
    from benchbench.measure import (StepTimer, environment, forward_flops, inference_latency_ms, peak_memory,
                                   reset_peak_memory)
    from benchbench.models import count_params, model_info
    from benchbench.tracking import make_tracker

    validate(config)
    spec = get_dataset(config.dataset)
    data_dir = resolve_data_dir(data_dir)
    spec.require_present(data_dir)  # before any model is built: training never downloads

    run_dir = Path(out_dir) / config.run_name()
    state_path = run_dir / "state.json"
    if run_dir.exists() and not resume:
        raise FileExistsError(f"{run_dir} exists: pass --resume to continue it, or choose another --out")
    if (run_dir / "run.json").exists():
        return json.loads((run_dir / "run.json").read_text())
    wall_start = time.time()
    reset_peak_memory()

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    image_size = config.image_size or spec.default_image_size
    augment = config.augment or spec.augment
    sizes = spec.split_sizes(config.val_size)
    examples = {split: spec.load(split, data_dir, config.val_size).cache() for split in ("train", "val", "test")}
    evaluation = {split: eval_batches(examples[split], image_size=image_size, batch_size=config.batch_size,
                                      num_classes=spec.num_classes) for split in ("val", "test")}

    steps_per_epoch = sizes["train"] // config.batch_size
    strategy = distribution_strategy(distribute)
    with strategy.scope():  # variables, optimizer state and metrics live on every replica
        model, optimizer = build_training(config, spec, image_size, steps_per_epoch)

    run_dir.mkdir(parents=True, exist_ok=True)  # only now: bad model options fail above with nothing written
    state = {"epoch": 0, "history": [], "best_val_top1": -1.0, "best_epoch": None, "checkpoint": None,
             "wall_seconds": 0.0, "timing": dict.fromkeys(TIMING, 0.0)}
    if state_path.exists():
        state = json.loads(state_path.read_text())
        with strategy.scope():
            optimizer.build(model.trainable_variables)
            arrays = _load_arrays(run_dir / state["checkpoint"])  # weights, optimizer moments and step
            model.set_weights(arrays[:len(model.weights)])
            for variable, value in zip(optimizer.variables, arrays[len(model.weights):], strict=True):
                variable.assign(value)
            for variable, value in zip(_rng_variables(model), state["rng"], strict=True):
                variable.assign(value)

    family = model_info(config.model).family
    tracker = make_tracker(tracking, run_id=config.run_name(), run_dir=run_dir, group=group, job_type=config.model,
                           sync_hint=sync_hint,
                           tags=[config.dataset, family],
                           config={**config.resolved(), "image_size": image_size, "augment": augment, "family": family,
                                   "params": count_params(model), "environment": environment()})
    elapsed_before = state["wall_seconds"]  # earlier invocations of a resumed run, up to their last checkpoint
    timer = StepTimer()
    timing = state.setdefault("timing", dict.fromkeys(TIMING, 0.0))
    best_path = run_dir / "best.npz"  # the best epoch's weights (incl. BN statistics) as of the last checkpoint
    best = _load_arrays(best_path) if best_path.exists() else None
    best_unsaved, save_seconds, last_checkpoint = False, None, time.time()

    def end_of_epoch(epoch: int, fit_logs: dict) -> None:
        nonlocal best, best_unsaved, save_seconds, last_checkpoint
        start = time.time()
        logs = {key: float(value) for key, value in fit_logs.items()}
        logs["epoch"] = epoch + 1
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        state["history"].append(logs)
        if logs["val_top1"] > state["best_val_top1"]:
            state["best_val_top1"], state["best_epoch"] = logs["val_top1"], epoch + 1
            best, best_unsaved = model.get_weights(), True
        state["epoch"] = epoch + 1
        # Checkpoint when the time since the last one exceeds its cost / CHECKPOINT_BUDGET, and after the
        # first epoch (which also pays for tracing). A kill loses at most that much training, which the
        # resumed run replays bit for bit; a checkpoint per epoch cost 12 % of a digits run (issue 7).
        if save_seconds is None or (start - last_checkpoint) * CHECKPOINT_BUDGET >= save_seconds:
            if best_unsaved:
                _atomic_save_arrays(best, best_path)
                best_unsaved = False
            checkpoint = f"epoch{epoch + 1:04d}.npz"
            _atomic_save_arrays(model.get_weights() + [keras.ops.convert_to_numpy(v) for v in optimizer.variables],
                                run_dir / checkpoint)
            previous, state["checkpoint"] = state["checkpoint"], checkpoint
            state["rng"] = [keras.ops.convert_to_numpy(v).tolist() for v in _rng_variables(model)]
            state["wall_seconds"] = elapsed_before + time.time() - wall_start
            _atomic_write_text(state_path, json.dumps(state, indent=1))
            if previous and previous != checkpoint:
                (run_dir / previous).unlink(missing_ok=True)
            last_checkpoint = time.time()
            save_seconds = last_checkpoint - start
        tracker.log_epoch(logs)
        if on_epoch:
            on_epoch(logs)
        timing["bookkeeping"] += time.time() - start

    # One fit over all remaining epochs: epoch e's batches depend only on (seed, e) (see train_batches), and
    # a fit call per epoch would cost ~0.1 s of set-up each, 10 % of a digits epoch.
    train = training_epochs(examples["train"], sizes["train"], first_epoch=state["epoch"], epochs=config.epochs,
                            image_size=image_size, batch_size=config.batch_size, num_classes=spec.num_classes,
                            seed=config.seed, augment=augment)
    timing["setup"] += time.time() - wall_start
    fit_start, bookkeeping_before = time.time(), timing["bookkeeping"]
    if state["epoch"] < config.epochs:
        # Callbacks run in order: the caller's (a pruner may set stop_training) see the epoch before ours
        # records it; Keras stops after the epoch in which one sets model.stop_training.
        model.fit(train, epochs=config.epochs, initial_epoch=state["epoch"], steps_per_epoch=steps_per_epoch,
                  validation_data=evaluation["val"], shuffle=False, verbose=verbose,
                  callbacks=[timer, *callbacks, keras.callbacks.LambdaCallback(on_epoch_end=end_of_epoch)])
    timing["fit"] += time.time() - fit_start - (timing["bookkeeping"] - bookkeeping_before)

    final_start = time.time()
    model.set_weights(best)
    _atomic_save_weights(model, run_dir / "best.weights.h5")
    test = (model.evaluate(evaluation["test"], verbose=0, return_dict=True) if evaluate_test
            else {"top1": None, "top5": None, "loss": None})
    step = timer.median_step_seconds()
    record = {
        "run_id": config.run_name(),
        "config": config.resolved(),
        "config_hash": config.hash(),
        "seed": config.seed,
        "resolved": {"image_size": image_size, "augment": augment, "splits": sizes, "steps_per_epoch": steps_per_epoch,
                     "data_dir": data_dir},
        "metrics": {"test_top1": test["top1"], "test_top5": test["top5"], "test_loss": test["loss"],
                    "best_val_top1": state["best_val_top1"], "best_epoch": state["best_epoch"],
                    "history": state["history"]},
        "stopped_early": state["epoch"] < config.epochs,
        "params": count_params(model),
        "gflops": forward_flops(model, image_size) / 1e9,
        "train_images_per_second": config.batch_size / step if step else None,
        "train_step_seconds_median": step,
        "inference_latency_ms": inference_latency_ms(model, image_size),
        **peak_memory(),
        "wall_seconds": elapsed_before + time.time() - wall_start,
        "timing_seconds": {**timing, "final": time.time() - final_start},
        "replicas": strategy.num_replicas_in_sync,
        "environment": environment(),
    }
    _atomic_write_text(run_dir / "run.json", json.dumps(record, indent=1))
    tracker.finish({**{k: v for k, v in record["metrics"].items() if k != "history" and v is not None},
                    "stopped_early": record["stopped_early"],
                    **{k: record[k] for k in ("params", "gflops", "train_images_per_second", "inference_latency_ms",
                                              "peak_memory_mb", "wall_seconds")}})
    best_path.unlink(missing_ok=True)  # finished: the record and best.weights.h5 remain
    if state["checkpoint"]:
        (run_dir / state["checkpoint"]).unlink(missing_ok=True)
    return record
