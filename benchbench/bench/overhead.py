"""`benchbench run`'s training loop against a bare `model.fit` of the same compiled model on the same batches."""

from __future__ import annotations

import statistics
import time

from benchbench.bench.speed import child


def overhead_config():
    """A small ShiftViT cell on digits (32 px, embed 48, 5 epochs: the first about 8 s with its trace, the others
    about 1.9 s with their validation), where per-epoch costs show (they weigh more than in the demo's cells,
    whose epochs are longer)."""
    from benchbench.run.config import RunConfig

    return RunConfig("shiftvit_t_light", "digits", epochs=5, image_size=32, model_args=(("embed_dim", 48),))


PROCESSES = 3  # fresh processes per side, the sides alternating


def runner_overhead(config, processes: int = PROCESSES) -> dict:
    """What the runner, tracking and callbacks add to a bare `model.fit` of the same compiled model
    (`run.build_training`) on the same batches: each side in `processes` fresh processes of its own, the sides
    alternating (bare, runner, bare, ...) so that a slow spell of the machine falls on both; medians per side.

    The runner's time is its one fit call over all epochs (with the step timer and op determinism) plus its
    per-epoch bookkeeping (checkpoints, best weights, state file, W&B offline logging); setup and the final
    test evaluation and cost measurements are reported apart, since a bare script loads data and evaluates
    too. W&B runs offline here (no network): online logging adds its upload thread.

    Why a process per fit: a process's second fit ran from 18 % faster to 29 % slower than its first, whichever
    side it was (December 7, 16 processes running both sides, by hand and in `make bench`), so two sides sharing
    a process compare fairly only when the order is balanced, and 3 processes cannot balance it. Each fit's
    first epoch holds the model's trace (8 of a 5-epoch fit's 16-18 s here, and most of the fit-to-fit spread):
    the ratio without its training part, where a per-step or per-epoch cost of the runner would show, is kept
    beside the whole fit's."""
    payload = config.resolved()
    bare, runner = [], []
    for _ in range(processes):
        bare.append(child("bare", payload))
        runner.append(child("runner", payload))
    bare_fit = statistics.median(r["fit"] for r in bare)
    runner_fit = statistics.median(r["fit"] for r in runner)
    bookkeeping = statistics.median(r["bookkeeping"] for r in runner)
    bare_rest = statistics.median(r["fit"] - r["epochs"][0] for r in bare)
    runner_rest = statistics.median(r["fit"] - r["epochs"][0] for r in runner)
    return {"model": config.model, "dataset": config.dataset, "epochs": config.epochs,
            "image_size": config.image_size, "batch_size": config.batch_size,
            "repeats": processes,  # fresh processes per side
            "bare_fit_seconds": bare_fit, "runner_fit_seconds": runner_fit, "bookkeeping_seconds": bookkeeping,
            "setup_seconds": statistics.median(r["setup"] for r in runner),
            "final_seconds": statistics.median(r["final"] for r in runner),
            "overhead": (runner_fit + bookkeeping) / bare_fit - 1,
            "fit_overhead": runner_fit / bare_fit - 1, "bookkeeping_share": bookkeeping / bare_fit,
            "steady_overhead": (runner_rest + bookkeeping) / bare_rest - 1,
            "phases": _phases(bare, runner), "bare_runs": bare, "runner_runs": runner}


def _phases(bare: list[dict], runner: list[dict]) -> dict:
    """Each side's median seconds in its first epoch's training part (the trace), all its epochs' training parts,
    validation passes and the rest of its fit (boundaries, callbacks; the runner's bookkeeping is outside its fit
    figure): where a difference sits."""
    def split(runs: list[dict]) -> dict:
        return {"first epoch": statistics.median(r["epochs"][0] for r in runs),
                "train": statistics.median(r["train"] for r in runs),
                "validation": statistics.median(r["validation"] for r in runs),
                "rest": statistics.median(r["fit"] - r["train"] - r["validation"] for r in runs)}
    return {"bare": split(bare), "runner": split(runner)}


def bare_fit(payload: dict) -> dict:
    """A user's plain script: the runner's model, optimizer and batches, one `model.fit` over all epochs."""
    import keras
    from tensorflow.python.framework import config as tf_config

    from benchbench.data import get_dataset, resolve_data_dir
    from benchbench.data.pipeline import eval_batches, train_batches
    from benchbench.measure import FitPhases
    from benchbench.run.config import RunConfig
    from benchbench.run.recipe import build_training

    config = RunConfig.from_resolved(payload)
    spec = get_dataset(config.dataset)
    data_dir = resolve_data_dir(None)
    image_size = config.image_size or spec.default_image_size
    sizes = spec.split_sizes(config.val_size)
    keras.utils.set_random_seed(config.seed)
    train = spec.load("train", data_dir, config.val_size).cache()
    val = eval_batches(spec.load("val", data_dir, config.val_size).cache(), image_size=image_size,
                       batch_size=config.batch_size, num_classes=spec.num_classes)
    batches = train_batches(train, sizes["train"], image_size=image_size, batch_size=config.batch_size,
                            num_classes=spec.num_classes, seed=config.seed, epoch=0,
                            augment=config.augment or spec.augment).repeat()
    steps = sizes["train"] // config.batch_size
    model, _ = build_training(config, spec, image_size, steps)
    phases = FitPhases()
    start = time.perf_counter()
    model.fit(batches, epochs=config.epochs, steps_per_epoch=steps, validation_data=val, verbose=0,
              callbacks=[phases])
    return {"fit": time.perf_counter() - start, **phases.seconds, "epochs": phases.epochs,
            "op_determinism": tf_config.is_op_determinism_enabled()}  # off, as in a user's script


def runner_fit(payload: dict) -> dict:
    import os
    import tempfile

    from benchbench.measure import FitPhases
    from benchbench.run.config import RunConfig
    from benchbench.run.train import execute

    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    phases = FitPhases()
    with tempfile.TemporaryDirectory() as out:
        record = execute(RunConfig.from_resolved(payload), out_dir=out, verbose=0, tracking="wandb", job_type="bench",
                         sync_hint=False, callbacks=[phases])
    return {**record["timing_seconds"], **phases.seconds, "epochs": phases.epochs}


