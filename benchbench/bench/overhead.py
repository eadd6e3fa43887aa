"""`benchbench run`'s training loop against a bare `model.fit` of the same compiled model on the same batches."""

from __future__ import annotations

import statistics
import time

from benchbench.bench.speed import child


def overhead_config():
    """A small ShiftViT cell on digits (32 px, embed 48, 6 epochs of ~2.4 s), where per-epoch costs show (they
    weigh more than in the demo's cells, whose epochs are longer)."""
    from benchbench.run.config import RunConfig

    return RunConfig("shiftvit_t_light", "digits", epochs=6, image_size=32, model_args=(("embed_dim", 48),))


PROCESSES = 3  # the count; the order alternates (bare first in the first and third)


def runner_overhead(config, processes: int = PROCESSES) -> dict:
    """What the runner, tracking and callbacks add to a bare `model.fit` of the same compiled model
    (`run.build_training`) on the same batches: both sides in each of `processes` fresh processes, bare first in
    one process and runner first in the next.

    The runner's time is its one fit call over all epochs (with the step timer and op determinism) plus its
    per-epoch bookkeeping (checkpoints, best weights, state file, W&B offline logging); setup and the final
    test evaluation and cost measurements are reported apart, since a bare script loads data and evaluates
    too. W&B runs offline here (no network): online logging adds its upload thread.

    Why both sides share a process, and why the median of the processes' ratios: single fits here sometimes run
    20-40 % slower than their neighbours, validation passes included, whichever side they belong to (by hand on
    December 7: 3 runner fits of 8 took 24.7-26.2 s in their training parts where the others took 20.1-23.0 and
    bare ones 19.9-20.9; then, with both sides in each process, one bare fit took 32.6 s beside its process's
    runner fit of 26.8 s). With one side per process and medians per side, three fits per side decided which side
    drew the slow ones (+0.2 to +13 % in `make bench` runs). Both sides in one process run back to back, on the
    same machine state as far as it lasts, and the median over the processes' ratios sets one slow fit aside.
    The order alternates, since a process's second fit may find kernels and caches warm. The ratio of the sides'
    medians is kept beside it."""
    payload = config.resolved()
    bare, runner, first = [], [], []
    for i in range(processes):
        order = ["bare", "runner"] if i % 2 == 0 else ["runner", "bare"]
        sides = child("pair", {"config": payload, "order": order})
        bare.append(sides["bare"])
        runner.append(sides["runner"])
        first.append(order[0])
    bare_fit = statistics.median(r["fit"] for r in bare)
    runner_fit = statistics.median(r["fit"] for r in runner)
    bookkeeping = statistics.median(r["bookkeeping"] for r in runner)
    pairs = [(r["fit"] + r["bookkeeping"]) / b["fit"] - 1 for b, r in zip(bare, runner, strict=True)]
    # The first epoch holds the trace (8 of a 6-epoch fit's 18 s here, varying by a second from fit to fit): the
    # epochs after it are where a per-step or per-epoch cost of the runner would show.
    steady = [(r["fit"] - r["epochs"][0] + r["bookkeeping"]) / (b["fit"] - b["epochs"][0]) - 1
              for b, r in zip(bare, runner, strict=True)]
    return {"model": config.model, "dataset": config.dataset, "epochs": config.epochs,
            "image_size": config.image_size, "batch_size": config.batch_size,
            "repeats": processes,  # fresh processes, each running both sides
            "bare_fit_seconds": bare_fit, "runner_fit_seconds": runner_fit, "bookkeeping_seconds": bookkeeping,
            "setup_seconds": statistics.median(r["setup"] for r in runner),
            "final_seconds": statistics.median(r["final"] for r in runner),
            "overhead": statistics.median(pairs), "medians_overhead": (runner_fit + bookkeeping) / bare_fit - 1,
            "fit_overhead": runner_fit / bare_fit - 1, "bookkeeping_share": bookkeeping / bare_fit,
            "pair_overheads": pairs, "pair_overhead_median": statistics.median(pairs), "first": first,
            "steady_overheads": steady, "steady_overhead": statistics.median(steady),
            "phases": _phases(bare, runner), "bare_runs": bare, "runner_runs": runner}


def paired_fits(payload: dict) -> dict:
    """Both sides in this one process, in the payload's order (`runner_overhead`'s fresh process)."""
    from tensorflow.python.framework import config as tf_config

    fits = {}
    for side in payload["order"]:
        fits[side] = {"bare": bare_fit, "runner": runner_fit}[side](payload["config"])
        # The runner turns op determinism on for its process, and a user's bare script would not have it (its
        # cost is part of the overhead: +2.6 % inside one process on December 7, 6 rounds each).
        tf_config.disable_op_determinism()
    return fits


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


