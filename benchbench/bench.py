"""`benchbench bench`: training and inference speed of one model configuration on this device, as model FLOPs
utilisation (MFU) against a peak measured in the same process.

Training is timed step by step inside one long `fit` on in-memory random images (the pure model: no input
pipeline, no augmentation), skipping the first steps, and reported as the median. MFU = 3 x forward FLOPs per
image x training images/s / peak FLOP/s, where 3 counts the forward pass and the two backward matmuls, and the
peak is the best of repeated 2048^2 and 4096^2 matrix multiplies in the compute dtype of the precision.
"""

from __future__ import annotations

import dataclasses
import socket
import statistics
import time

import keras
import numpy as np

COMPUTE_DTYPE = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
POLICY = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    model: str
    image_size: int | None = None  # None: the model's reference size
    batch_size: int = 64
    precision: str = "fp32"
    jit: bool = False
    steps: int = 20
    num_classes: int | None = None  # None: the model's reference classes


# What `make bench` measures: the keras.io tutorial configurations the seed recipes use (the targets
# are stated for them), in fp32 and bf16.
SUITE = [BenchConfig(model, batch_size=batch, steps=steps, precision=precision)
         for precision in ("fp32", "bf16")
         for model, batch, steps in (("vit_keras", 64, 20),  # 32 px CIFAR input, resized to 72 px inside
                                     ("shiftvit_keras", 64, 20),  # 48 px
                                     ("mobilevit_xxs", 16, 12))]  # 256 px
# fp32 training MFU targets per family on CPU, and the tutorial implementations' measured MFU (issue 7).
TARGET_MFU = {"vit": 0.40, "shiftvit": 0.45, "mobilevit": 0.25}
TUTORIAL_MFU = {"vit_keras": 0.235, "shiftvit_keras": 0.288, "mobilevit_xxs": 0.050}


def peak_flops(precision: str, sizes: tuple[int, ...] = (2048, 4096), repeats: int = 5) -> float:
    """The best FLOP/s of repeated n x n matrix multiplies in the precision's compute dtype."""
    import tensorflow as tf

    dtype = COMPUTE_DTYPE[precision]
    best = 0.0
    for n in sizes:
        a = tf.cast(tf.random.stateless_normal((n, n), seed=(1, 2)), dtype)
        b = tf.cast(tf.random.stateless_normal((n, n), seed=(3, 4)), dtype)
        product = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
        product().numpy()  # trace and warm up
        for _ in range(repeats):
            start = time.perf_counter()
            product().numpy()
            best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


class _Timer(keras.callbacks.Callback):
    def __init__(self, skip: int):
        super().__init__()
        self.skip, self.durations = skip, []

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch >= self.skip:
            self.durations.append(time.perf_counter() - self.start)


def bench(config: BenchConfig, peak: float | None = None) -> dict:
    """Measures one configuration; returns a JSON-able record."""
    import tensorflow as tf

    from benchbench.measure import environment, forward_flops, inference_latency_ms, peak_memory, reset_peak_memory
    from benchbench.models import count_params, create_model, model_info

    entry = model_info(config.model)
    size = config.image_size or entry.image_size
    classes = config.num_classes or entry.num_classes
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(POLICY[config.precision])
    try:
        keras.utils.set_random_seed(0)
        reset_peak_memory()
        model = create_model(config.model, num_classes=classes, image_size=size)
        flops = forward_flops(model, size)
        model.compile(optimizer=keras.optimizers.AdamW(1e-4),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=config.jit)
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, (config.batch_size, size, size, 3)).astype("float32")
        y = rng.integers(0, classes, config.batch_size)
        data = tf.data.Dataset.from_tensors((x, y)).repeat()
        skip = 3
        timer = _Timer(skip)
        model.fit(data, steps_per_epoch=config.steps + skip, epochs=1, callbacks=[timer], verbose=0,
                  shuffle=False)
        step = statistics.median(timer.durations)
        infer = _median_seconds(lambda: model.predict_on_batch(x), warmup=2, repeats=5)
        latency = inference_latency_ms(model, size)
        memory = peak_memory()
        params = count_params(model)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    peak = peak or peak_flops(config.precision)
    train_ips = config.batch_size / step
    return {**dataclasses.asdict(config), "image_size": size, "num_classes": classes, "family": entry.family,
            "reference_image_size": entry.image_size,
            "params": params, "gflops": flops / 1e9, "train_step_seconds": step, "train_images_per_second": train_ips,
            "inference_images_per_second": config.batch_size / infer, "latency_ms": latency, **memory,
            "peak_gflops": peak / 1e9, "mfu": 3 * flops * train_ips / peak, "host": socket.gethostname(),
            "environment": environment()}


def _median_seconds(fn, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def suite_markdown(records: list[dict]) -> str:
    """The `make bench` table: every configuration, with fp32 MFU against the targets and bf16 speed-ups."""
    from tabulate import tabulate

    fp32 = {(r["model"], r["image_size"], r["batch_size"]): r for r in records if r["precision"] == "fp32"}
    rows = []
    for r in records:
        key = (r["model"], r["image_size"], r["batch_size"])
        # The targets are stated for the tutorial configurations: fp32 at the model's reference size.
        reference = r["precision"] == "fp32" and r["image_size"] == r["reference_image_size"]
        target = TARGET_MFU.get(r["family"]) if reference else None
        tutorial = TUTORIAL_MFU.get(r["model"]) if reference else None
        speedup = r["train_images_per_second"] / fp32[key]["train_images_per_second"] if (
            r["precision"] != "fp32" and key in fp32) else None
        rows.append([f"`{r['model']}`", r["image_size"], r["batch_size"], r["precision"] + (" +XLA" if r["jit"] else ""),
                     f"{r['gflops']:.3f}", f"{r['train_images_per_second']:.1f}", f"{1000 * r['train_step_seconds']:.0f}",
                     f"{r['inference_images_per_second']:.0f}", f"{r['latency_ms']:.1f}", f"{r['peak_memory_mb']:.0f}",
                     f"{r['peak_gflops']:.0f}", f"{100 * r['mfu']:.1f}",
                     f"≥ {100 * target:.0f}" if target else "–", f"{100 * tutorial:.1f}" if tutorial else "–",
                     f"{speedup:.2f}x (target ≥ 1.8x)" if speedup else "–"])
    headers = ["model", "px", "batch", "precision", "GFLOPs/img", "train img/s", "step (ms)", "infer img/s",
               "latency (ms)", "peak mem (MB)", "peak GFLOP/s", "MFU %", "target MFU %", "tutorial MFU %",
               "speed-up vs fp32"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def write_suite(records: list[dict], folder) -> "Path":
    """reports/bench/<host>.md: the suite's table under an environment stamp, written atomically."""
    import datetime
    import os
    from pathlib import Path

    env = records[0]["environment"]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{records[0]['host']}.md"
    text = (f"# benchbench bench: {records[0]['host']}\n\n"
            f"{env.get('device')}, {env.get('cpu_count')} CPUs; backend {env.get('backend')}, keras {env.get('keras')}, "
            f"tensorflow {env.get('tensorflow')}; git {str(env.get('git_commit'))[:10]}; "
            f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.\n\n"
            "Training: median step time inside one `fit` on in-memory random images after 3 warm-up steps; "
            "MFU = 3 x forward FLOPs x train img/s / peak, the peak being the best 2048^2 / 4096^2 matmul of the "
            "same precision measured in the same process. Targets: issue 7.\n\n" + suite_markdown(records) + "\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
