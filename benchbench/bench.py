"""`benchbench bench`: training and inference speed of one model configuration on this device, as model FLOPs
utilisation (MFU) against a peak measured in the same process (or a given one, e.g. the datasheet's).

Training is timed step by step inside one long `fit` on in-memory random images (the pure model: no input
pipeline, no augmentation), skipping the first steps, and reported as the median. MFU = 3 x forward FLOPs per
image x training images/s / peak FLOP/s, where 3 counts the forward pass and the two backward matmuls, and the
peak is the best of repeated 2048^2 and 4096^2 matrix multiplies in the compute dtype of the precision.
"""

from __future__ import annotations

import dataclasses
import functools
import socket
import statistics
import time
from pathlib import Path

import keras
import numpy as np

from benchbench.run.recipe import precision_policy

COMPUTE_DTYPE = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    model: str
    image_size: int | None = None  # None: the model's reference size
    batch_size: int = 64
    precision: str = "fp32"
    jit: bool = False
    steps: int = 20
    num_classes: int | None = None  # None: the model's reference classes
    model_args: tuple[tuple[str, object], ...] = ()  # model options, e.g. (("dropout", 0.0),)
    profile: bool = False  # also profile the training step's op types (TF profiler)
    peak_gflops: float | None = None  # the MFU denominator; None: measured in the process (see peak_flops)


# What `make bench` measures: the keras.io tutorial configurations the seed recipes use (the targets
# are stated for them) in fp32 and bf16, and the paper configurations of the demo's ViT and ShiftViT at
# CIFAR size in fp32 (MobileViT-XXS is both).
SUITE = [BenchConfig(model, batch_size=batch, steps=steps, precision=precision)
         for precision in ("fp32", "bf16")
         for model, batch, steps in (("vit_keras", 64, 20),  # 32 px CIFAR input, resized to 72 px inside
                                     ("shiftvit_keras", 64, 20),  # 48 px
                                     ("mobilevit_xxs", 16, 12))]  # 256 px
SUITE += [BenchConfig("vit_tiny", image_size=32, batch_size=64), BenchConfig("shiftvit_t_light", image_size=32)]
# The shift-vs-attention pair at the configuration of studies/shift_vs_attention.toml (32 px, patches of 2).
SUITE += [BenchConfig("swin_t", image_size=32, model_args=(("patch_size", 2), ("window_size", 4))),
          BenchConfig("shiftvit_t_light", image_size=32, model_args=(("patch_size", 2),))]
SUITE_REPEATS = 3  # fresh processes per configuration: one process's figure swings by up to 20 % here
# The input pipelines feeding the tutorial configurations: (dataset, image size, batch size, model).
SUITE_PIPELINES = [("cifar100", 32, 64, "vit_keras"), ("cifar10", 48, 64, "shiftvit_keras"),
                   ("tf_flowers", 256, 16, "mobilevit_xxs")]
# fp32 training MFU targets per family on CPU, and the tutorial implementations' measured MFU (issue 7).
TARGET_MFU = {"vit": 0.40, "shiftvit": 0.45, "mobilevit": 0.25}
TUTORIAL_MFU = {"vit_keras": 0.235, "shiftvit_keras": 0.288, "mobilevit_xxs": 0.050}
TARGET_BF16_SPEEDUP, TARGET_OVERHEAD, TARGET_PIPELINE_RATIO = 1.8, 0.03, 5.0


def parse_model_sets(items: list[str]) -> tuple[tuple[str, object], ...]:
    """`--set OPTION=VALUE` of `benchbench bench`: model options (a `model.` prefix is allowed), typed."""
    from benchbench.run.config import parse_literal

    model_args = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects OPTION=VALUE (a model option, e.g. dropout=0), got {item!r}")
        model_args.append((key.removeprefix("model."), parse_literal(raw)))
    return tuple(model_args)


@functools.cache
def peak_flops(precision: str, sizes: tuple[int, ...] = (2048, 4096), repeats: int = 5) -> float:
    """The best FLOP/s of repeated n x n matrix multiplies in the precision's compute dtype; measured once per
    process (`make bench` measures each configuration in a fresh process, so each gets its own)."""
    import tensorflow as tf

    dtype = COMPUTE_DTYPE[precision]
    best = 0.0
    for n in sizes:
        a = tf.cast(tf.random.stateless_normal((n, n), seed=(1, 2)), dtype)
        b = tf.cast(tf.random.stateless_normal((n, n), seed=(3, 4)), dtype)
        # Traced and run within this iteration: the closure sees this iteration's a and b.
        product = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))  # noqa: B023
        product().numpy()  # trace and warm up
        for _ in range(repeats):
            start = time.perf_counter()
            product().numpy()
            best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def bench(config: BenchConfig, peak: float | None = None) -> dict:
    """Measures one configuration; returns a JSON-able record."""
    import tensorflow as tf

    from benchbench.measure import (
        StepTimer,
        environment,
        forward_flops,
        inference_speed,
        peak_memory,
        reset_peak_memory,
    )
    from benchbench.models import count_params, create_model, model_info

    entry = model_info(config.model)
    size = config.image_size or entry.image_size
    classes = config.num_classes or entry.num_classes
    with precision_policy(config.precision):
        keras.utils.set_random_seed(0)
        reset_peak_memory()
        model = create_model(config.model, num_classes=classes, image_size=size, **dict(config.model_args))
        flops = forward_flops(model, size)
        model.compile(optimizer=keras.optimizers.AdamW(1e-4),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=config.jit)
        model.optimizer.build(model.trainable_variables)  # not while tracing, which would trace twice
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, (config.batch_size, size, size, 3)).astype("float32")
        y = rng.integers(0, classes, config.batch_size)
        data = tf.data.Dataset.from_tensors((x, y)).repeat()
        skip = 3
        timer = StepTimer(skip)
        model.fit(data, steps_per_epoch=config.steps + skip, epochs=1, callbacks=[timer], verbose=0,
                  shuffle=False)
        step = timer.median_step_seconds()
        profile = _profile(model, data, config.steps) if config.profile else None
        inference = inference_speed(model, size, config.batch_size)
        memory = peak_memory()
        params = count_params(model)
    peak = peak or (config.peak_gflops * 1e9 if config.peak_gflops else peak_flops(config.precision))
    train_ips = config.batch_size / step
    return {**dataclasses.asdict(config), "image_size": size, "num_classes": classes, "family": entry.family,
            "reference_image_size": entry.image_size,
            "params": params, "gflops": flops / 1e9, "train_step_seconds": step, "train_images_per_second": train_ips,
            "inference_images_per_second": inference["inference_images_per_second"],
            "latency_ms": inference["inference_latency_ms"], **memory,
            "peak_gflops": peak / 1e9, "mfu": 3 * flops * train_ips / peak, "host": socket.gethostname(),
            "model_args": dict(config.model_args), "profile": profile, "environment": environment()}


def _profile(model, data, steps: int) -> list[dict]:
    from benchbench.measure import profile_op_types

    return profile_op_types(lambda: model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0), steps)


def bench_repeated(config: BenchConfig, repeats: int) -> dict:
    """`bench` in `repeats` fresh processes: the record of the median training speed, with every repeat's
    speed and MFU. One process's figure swings by up to 20 % on these machines (thread placement, allocator
    state), which a single in-process measurement cannot show."""
    if repeats == 1:
        return bench(config)
    records = sorted((_child("bench", dataclasses.asdict(config)) for _ in range(repeats)),
                     key=lambda r: r["train_images_per_second"])
    median = dict(records[(len(records) - 1) // 2])
    median["repeats"] = [{"train_images_per_second": r["train_images_per_second"], "mfu": r["mfu"]} for r in records]
    return median


def _child(mode: str, payload: dict) -> dict:
    """Runs `python -m benchbench.bench MODE PAYLOAD` and returns the JSON record it prints last."""
    import json

    from benchbench.fresh_process import run_json

    return run_json("benchbench.bench", mode, json.dumps(payload), what=f"bench {mode} child")


# --- The input pipeline ---------------------------------------------------------------------------------

# tf_flowers' photos vary in size; 333 x 500 is the most common one.
STAND_IN_SIZE = {"tf_flowers": (333, 500)}


def pipeline_throughput(dataset: str, image_size: int, batch_size: int, batches: int = 60,
                        examples: int = 2048) -> dict:
    """Images per second the training pipeline delivers in steady state: shuffle, the data set's default
    augmentation at `image_size`, one-hot labels, batching, prefetch, all from the in-memory cache the runner
    reads after the first epoch (decoding happens once per run, so it is not part of the steady state).
    Random uint8 images of the data set's native size stand in for the real ones, which are not needed."""
    import tensorflow as tf

    from benchbench.data import get_dataset
    from benchbench.data.pipeline import train_batches

    spec = get_dataset(dataset)
    h, w = STAND_IN_SIZE.get(dataset, (spec.native_size, spec.native_size))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (examples, h, w, 3), dtype=np.uint8)
    labels = rng.integers(0, spec.num_classes, examples)
    cached = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
    ds = train_batches(cached, examples, image_size=image_size, batch_size=batch_size,
                       num_classes=spec.num_classes, seed=0, epoch=0, augment=spec.augment).repeat()
    iterator = iter(ds)
    for _ in range(5):  # fill the cache, the shuffle buffer and the prefetch
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return {"dataset": dataset, "image_size": image_size, "batch_size": batch_size, "augment": spec.augment,
            "stand_in_size": [h, w], "images_per_second": batches * batch_size / (time.perf_counter() - start)}


# --- Runner overhead ------------------------------------------------------------------------------------

def runner_overhead(config, repeats: int = 3) -> dict:
    """What the runner, tracking and callbacks add to a bare `model.fit` of the same compiled model
    (`run.build_training`) on the same batches: each side in `repeats` fresh processes, alternating.

    The runner's time is its one fit call over all epochs (with the step timer and op determinism) plus its
    per-epoch bookkeeping (checkpoints, best weights, state file, W&B offline logging); setup and the final
    test evaluation and cost measurements are reported apart, since a bare script loads data and evaluates
    too. W&B runs offline here (no network): online logging adds its upload thread."""
    payload = config.resolved()
    bare, runner = [], []
    for _ in range(repeats):
        bare.append(_child("bare", payload))
        runner.append(_child("runner", payload))
    bare_fit = statistics.median(r["fit"] for r in bare)
    runner_fit = statistics.median(r["fit"] for r in runner)
    bookkeeping = statistics.median(r["bookkeeping"] for r in runner)
    return {"model": config.model, "dataset": config.dataset, "epochs": config.epochs,
            "image_size": config.image_size, "batch_size": config.batch_size, "repeats": repeats,
            "bare_fit_seconds": bare_fit, "runner_fit_seconds": runner_fit, "bookkeeping_seconds": bookkeeping,
            "setup_seconds": statistics.median(r["setup"] for r in runner),
            "final_seconds": statistics.median(r["final"] for r in runner),
            "overhead": (runner_fit + bookkeeping) / bare_fit - 1, "fit_overhead": runner_fit / bare_fit - 1,
            "bookkeeping_share": bookkeeping / bare_fit, "bare_runs": bare, "runner_runs": runner}


def _bare_fit(payload: dict) -> dict:
    """A user's plain script: the runner's model, optimizer and batches, one `model.fit` over all epochs."""
    import keras

    from benchbench.data import get_dataset, resolve_data_dir
    from benchbench.data.pipeline import eval_batches, train_batches
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
    start = time.perf_counter()
    model.fit(batches, epochs=config.epochs, steps_per_epoch=steps, validation_data=val, verbose=0)
    return {"fit": time.perf_counter() - start}


def _runner_fit(payload: dict) -> dict:
    import os
    import tempfile

    from benchbench.run.config import RunConfig
    from benchbench.run.train import execute

    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    with tempfile.TemporaryDirectory() as out:
        record = execute(RunConfig.from_resolved(payload), out_dir=out, verbose=0, tracking="wandb", job_type="bench",
                         sync_hint=False)
    return record["timing_seconds"]


# --- The suite ------------------------------------------------------------------------------------------

def run_suite(repeats: int = SUITE_REPEATS, progress=print) -> dict:
    """Everything `make bench` measures: the configurations, the pipelines and the runner overhead."""
    records = []
    for config in SUITE:
        records.append(bench_repeated(config, repeats))
        progress(f"{config.model} {records[-1]['image_size']} px {config.precision}: "
                 f"{records[-1]['train_images_per_second']:.1f} img/s, MFU {100 * records[-1]['mfu']:.1f}%")
    pipelines = []
    for dataset, size, batch, model in SUITE_PIPELINES:
        pipelines.append({**pipeline_throughput(dataset, size, batch), "model": model})
        progress(f"pipeline {dataset} {size} px: {pipelines[-1]['images_per_second']:.0f} img/s")
    overhead = runner_overhead(overhead_config(), repeats)
    progress(f"runner overhead on {overhead['model']}/{overhead['dataset']}: {100 * overhead['overhead']:+.1f}%")
    return {"records": records, "pipelines": pipelines, "overhead": overhead}


def overhead_config():
    """A small ShiftViT cell on digits (32 px, embed 48, 10 epochs of ~3 s), where per-epoch costs show."""
    from benchbench.run.config import RunConfig

    return RunConfig("shiftvit_t_light", "digits", epochs=10, image_size=32, model_args=(("embed_dim", 48),))


def _targeted(record: dict) -> bool:
    """Whether the record is one of the suite's fp32 configurations, for which the issue states targets."""
    return record["precision"] == "fp32" and not record["jit"] and any(
        (c.model, c.image_size or record["reference_image_size"], c.batch_size, dict(c.model_args)) ==
        (record["model"], record["image_size"], record["batch_size"], record.get("model_args") or {})
        for c in SUITE if c.precision == "fp32")


def _label(record: dict) -> str:
    """`model`, with its options when it has any: the same model may be measured in two configurations."""
    options = ", ".join(f"{k}={v}" for k, v in sorted((record.get("model_args") or {}).items()))
    return f"`{record['model']}`" + (f" ({options})" if options else "")


def _key(record: dict) -> tuple:
    return record["model"], record["image_size"], record["batch_size"], _label(record)


def pair_markdown(records: list[dict]) -> str:
    """Each measured model next to its matched pair (models.matched_pair) measured at the same size, batch,
    precision and shared options: the token mixer's cost alone."""
    from benchbench.models import model_info

    lines = []
    for r in records:
        other = model_info(r["model"]).matched
        own = {k: v for k, v in (r.get("model_args") or {}).items() if k != "window_size"}  # attention's own option
        match = next((o for o in records if o["model"] == other and (o["image_size"], o["batch_size"], o["precision"])
                      == (r["image_size"], r["batch_size"], r["precision"]) and (o.get("model_args") or {}) == own),
                     None)
        if match:
            lines.append(f"- {_label(r)} against its matched pair {_label(match)}, {r['image_size']} px, batch "
                         f"{r['batch_size']}, {r['precision']}: {r['train_images_per_second']:.1f} against "
                         f"{match['train_images_per_second']:.1f} train img/s (the pair "
                         f"{match['train_images_per_second'] / r['train_images_per_second']:.2f}x as fast), "
                         f"{r['gflops']:.3f} against {match['gflops']:.3f} GFLOPs/img, MFU "
                         f"{100 * r['mfu']:.1f} against {100 * match['mfu']:.1f} %.")
    return "\n".join(lines)


def suite_markdown(records: list[dict]) -> str:
    """The speed table: every configuration, fp32 MFU against the family targets, bf16 speed-ups."""
    from tabulate import tabulate

    fp32 = {_key(r): r for r in records if r["precision"] == "fp32"}
    rows = []
    for r in records:
        key = _key(r)
        target = TARGET_MFU.get(r["family"]) if _targeted(r) else None
        # The tutorial figures are for the tutorial configurations: fp32 at the model's reference size.
        tutorial = TUTORIAL_MFU.get(r["model"]) if target and r["image_size"] == r["reference_image_size"] else None
        speedup = r["train_images_per_second"] / fp32[key]["train_images_per_second"] if (
            r["precision"] != "fp32" and key in fp32) else None
        runs = r.get("repeats")
        spread = (f" ({min(x['train_images_per_second'] for x in runs):.0f}–"
                  f"{max(x['train_images_per_second'] for x in runs):.0f})") if runs else ""
        precision = r["precision"] + (" +XLA" if r["jit"] else "")
        rows.append([_label(r), r["image_size"], r["batch_size"], precision,
                     f"{r['gflops']:.3f}", f"{r['train_images_per_second']:.1f}{spread}",
                     f"{1000 * r['train_step_seconds']:.0f}",
                     f"{r['inference_images_per_second']:.0f}", f"{r['latency_ms']:.1f}", f"{r['peak_memory_mb']:.0f}",
                     f"{r['peak_gflops']:.0f}", f"{100 * r['mfu']:.1f}",
                     f"≥ {100 * target:.0f}" if target else "–", f"{100 * tutorial:.1f}" if tutorial else "–",
                     f"{speedup:.2f}x (target ≥ {TARGET_BF16_SPEEDUP}x)" if speedup else "–"])
    headers = ["model", "px", "batch", "precision", "GFLOPs/img", "train img/s (range)", "step (ms)", "infer img/s",
               "latency (ms)", "peak mem (MB)", "peak GFLOP/s", "MFU %", "target MFU %", "tutorial MFU %",
               "speed-up vs fp32"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def record_markdown(record: dict) -> str:
    """One configuration's row of the speed table, and its op-type profile when it was profiled."""
    from tabulate import tabulate

    text = suite_markdown([record])
    if record["profile"]:
        text += "\n\nTraining step by op type (TF profiler; shares of op time):\n\n" + tabulate(
            [[p["op"], f"{p['ms_per_step']:.1f}", f"{100 * p['share']:.1f}"] for p in record["profile"]],
            headers=["op", "ms / step", "share %"], tablefmt="github", disable_numparse=True)
    return text


def pipeline_markdown(pipelines: list[dict], records: list[dict]) -> str:
    from tabulate import tabulate

    rows = []
    for p in pipelines:
        fastest = max((r["train_images_per_second"] for r in records if r["model"] == p["model"]), default=None)
        ratio = p["images_per_second"] / fastest if fastest else None
        rows.append([p["dataset"], p["image_size"], p["batch_size"], p["augment"],
                     "x".join(map(str, p["stand_in_size"])), f"{p['images_per_second']:.0f}", f"`{p['model']}`",
                     f"{fastest:.1f}" if fastest else "–", f"{ratio:.1f}x" if ratio else "–",
                     f"≥ {TARGET_PIPELINE_RATIO:.0f}x"])
    headers = ["dataset", "px", "batch", "augment", "stand-in image", "pipeline img/s", "model it feeds",
               "model train img/s (fastest precision)", "ratio", "target"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def overhead_markdown(o: dict) -> str:
    from tabulate import tabulate

    row = [f"`{o['model']}` on {o['dataset']}, {o['epochs']} epochs", f"{o['bare_fit_seconds']:.1f}",
           f"{o['runner_fit_seconds']:.1f}", f"{o['bookkeeping_seconds']:.2f}", f"{100 * o['fit_overhead']:+.1f}",
           f"{100 * o['bookkeeping_share']:.1f}", f"{100 * o['overhead']:+.1f}", f"≤ {100 * TARGET_OVERHEAD:.0f}",
           f"{o['setup_seconds']:.1f} / {o['final_seconds']:.1f}"]
    headers = ["run", "bare fit (s)", "runner fits (s)", "bookkeeping (s)", "fit overhead %", "bookkeeping %",
               "total overhead %", "target %", "setup / final (s)"]
    return tabulate([row], headers=headers, tablefmt="github", disable_numparse=True)


def write_suite(suite: dict, folder) -> Path:
    """reports/bench/<host>.md: the suite's tables under an environment stamp, and <host>.json with every
    figure, both written atomically."""
    import datetime
    from pathlib import Path

    from benchbench import io

    records = suite["records"]
    env = records[0]["environment"]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{records[0]['host']}.md"
    repeats = len(records[0].get("repeats") or [None])
    o = suite["overhead"]
    text = (f"# benchbench bench: {records[0]['host']}\n\n"
            f"{env.get('device')}, {env.get('cpu_count')} CPUs; backend {env.get('backend')}, "
            f"keras {env.get('keras')}, "
            f"tensorflow {env.get('tensorflow')}; git {str(env.get('git_commit'))[:10]}; "
            f"{datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}.\n\n"
            "## Training and inference speed\n\n"
            f"Each configuration measured in {repeats} fresh process(es); the row is the median one, the range "
            "is over the processes. Training: median step time inside one `fit` on in-memory random images after "
            "3 warm-up steps; MFU = 3 x forward FLOPs x train img/s / peak, the peak being the best 2048^2 / "
            "4096^2 matmul of the same precision measured in the same process. Inference: forward passes chained "
            "in one compiled loop (no Python dispatch per pass), batch-1 latency and throughput at the batch size. "
            "Targets: issue 7 (family MFU in "
            "fp32, bf16 speed-up).\n\n" + suite_markdown(records) + "\n\n"
            + (pair_markdown(records) + "\n\n" if pair_markdown(records) else "") +
            "## Input pipeline\n\n"
            "Steady-state images per second of the training pipeline (shuffle, the data set's augmentation, "
            "one-hot, batch, prefetch) from the in-memory cache a run reads after its first epoch, on random "
            "images of the data set's native size, against the training speed of the model it feeds.\n\n"
            + pipeline_markdown(suite["pipelines"], records) + "\n\n"
            "## Runner overhead\n\n"
            f"`benchbench run`'s training loop against a bare `model.fit` of the same compiled model on the same "
            f"batches, each in {o['repeats']} fresh processes (medians). Runner = its fit call (all epochs, step "
            "timer, op determinism) + per-epoch bookkeeping (checkpoints, best weights, state file, W&B "
            "offline). Setup (data, model) and the final test evaluation and cost measurements are listed apart: "
            "a bare script has its own.\n\n" + overhead_markdown(o) + "\n")
    io.write_text(path, text)
    io.write_json(path.with_suffix(".json"), suite)  # every figure, for scripts
    return path


def _main(argv: list[str]) -> None:
    """Child processes of the suite: `python -m benchbench.bench bench|bare|runner JSON`."""
    import json

    mode, payload = argv[0], json.loads(argv[1])
    if mode == "bench":
        payload["model_args"] = tuple(tuple(item) for item in payload.get("model_args", ()))
        record = bench(BenchConfig(**payload))
    else:
        record = {"bare": _bare_fit, "runner": _runner_fit}[mode](payload)
    print(json.dumps(record))


if __name__ == "__main__":
    import sys

    _main(sys.argv[1:])
