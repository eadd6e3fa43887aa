"""Training and inference speed of one model configuration on this machine, on any Keras backend, as model
FLOPs utilisation (MFU) against a peak measured in the same process (or a given one, e.g. the datasheet's).

Training is timed step by step inside one long `fit` on in-memory random images (the pure model: no input
pipeline, no augmentation), skipping the first steps, and reported as the median; the first step, which traces
and compiles, is reported apart. MFU = 3 x forward FLOPs per image x training images/s / peak FLOP/s, where 3
counts the forward pass and the two backward matmuls, and the peak is the best of repeated 2048^2, 3072^2 and
4096^2 matrix multiplies (up to the first that saturates the cores) in the compute dtype of the precision,
compiled by the same backend.

A configuration of another backend than this process's runs in a fresh process with KERAS_BACKEND set
(`bench_repeated`); FLOPs are counted once, on the TensorFlow graph, since the architecture is the same.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import socket
import time

import keras
import numpy as np

from benchbench.run.recipe import precision_policy

COMPUTE_DTYPE = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
BACKENDS = ("tensorflow", "jax", "torch")
# How each backend runs a training step by default, and with --jit. JAX has no useful uncompiled mode (Keras
# would dispatch every op from Python), so its steps are always XLA programs.
COMPILERS = {("tensorflow", False): "tf.function graph", ("tensorflow", True): "XLA",
             ("jax", False): "XLA (jax.jit)", ("jax", True): "XLA (jax.jit)",
             ("torch", False): "eager", ("torch", True): "torch.compile"}


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
    backend: str = "tensorflow"  # the Keras backend it runs on
    gflops: float | None = None  # forward GFLOPs per image; None: counted on the TensorFlow graph
    inference: bool = True  # also time inference (bench_repeated: in the first process only)

    @classmethod
    def from_json(cls, payload: dict) -> BenchConfig:
        return cls(**{**payload, "model_args": tuple(tuple(item) for item in payload.get("model_args", ()))})


def installed(backend: str) -> bool:
    """Whether the backend's framework can be imported here (torch is an optional extra)."""
    return importlib.util.find_spec(backend) is not None


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


# Once a multiply lasts this long, the cores are saturated and a larger one adds only time: on the 2-core EPYC
# 3072^2 reached 220.6-221.0 GFLOP/s in 0.27 s and 4096^2 219.9-221.2 in 0.62 s (n=3). A GPU reaches its peak
# only with the larger sizes, which take it milliseconds.
SATURATED_SECONDS = 0.2


@functools.cache
def peak_flops(precision: str, sizes: tuple[int, ...] = (2048, 3072, 4096), repeats: int = 5) -> float:
    """The best FLOP/s of repeated n x n matrix multiplies in the precision's compute dtype on this process's
    backend, over `sizes` in turn until one multiply takes SATURATED_SECONDS; measured once per process (`make
    bench` measures each configuration in a fresh process, so each gets its own)."""
    best = 0.0
    for n in sizes:
        product = _matmul(n, COMPUTE_DTYPE[precision])
        product()  # trace or compile, and warm up
        fastest = min(_timed(product) for _ in range(repeats))
        best = max(best, 2 * n**3 / fastest)
        if fastest > SATURATED_SECONDS:
            break
    return best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _matmul(n: int, dtype: str):
    """A function that multiplies two n x n matrices of `dtype` and waits for the result, compiled the way the
    backend compiles a training step by default (a tf.function graph, a jax.jit program; torch runs eagerly)."""
    a = keras.ops.cast(keras.random.normal((n, n), seed=1), dtype)
    b = keras.ops.cast(keras.random.normal((n, n), seed=2), dtype)

    def product(a, b):
        return keras.ops.sum(keras.ops.cast(keras.ops.matmul(a, b), "float32"))

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        product = tf.function(product)
    elif backend == "jax":
        import jax

        product = jax.jit(product)
    return lambda: float(keras.ops.convert_to_numpy(product(a, b)))


def bench(config: BenchConfig, peak: float | None = None) -> dict:
    """Measures one configuration in this process, whose Keras backend must be the configuration's."""
    import tensorflow as tf

    from benchbench.measure import (
        StepTimer,
        copy_bandwidth,
        environment,
        forward_flops,
        inference_speed,
        peak_memory,
        reset_peak_memory,
    )
    from benchbench.models import count_params, model_info
    from benchbench.run.optimizer import AdamW

    backend = keras.backend.backend()
    if backend != config.backend:
        raise RuntimeError(f"a {config.backend} configuration measured under {backend}: use bench_repeated")
    entry, jit = model_info(config.model), config.jit or backend == "jax"
    with precision_policy(config.precision):
        reset_peak_memory()
        model, size, classes = _model(config)
        flops = config.gflops * 1e9 if config.gflops else (
            forward_flops(model, size) if backend == "tensorflow" else counted_flops(config))
        model.compile(optimizer=AdamW(1e-4),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
        model.optimizer.build(model.trainable_variables)  # not while tracing, which would trace twice
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, (config.batch_size, size, size, 3)).astype("float32")
        y = rng.integers(0, classes, config.batch_size)
        data = tf.data.Dataset.from_tensors((x, y)).repeat()  # the same batches on every backend
        timer = StepTimer(skip=3)
        model.fit(data, steps_per_epoch=config.steps + timer.skip, epochs=1, callbacks=[timer], verbose=0,
                  shuffle=False)
        step = timer.median_step_seconds()
        memory = peak_memory()  # training's: read before the profile and inference, which only some processes run
        bandwidth = copy_bandwidth()  # after the peak's reading: its arrays are not the model's
        profile = _profile(model, data, config.steps) if config.profile else None
        inference = (inference_speed(model, size, config.batch_size) if config.inference else
                     {"inference_images_per_second": None, "inference_latency_ms": None})
        params = count_params(model)
    peak = peak or (config.peak_gflops * 1e9 if config.peak_gflops else peak_flops(config.precision))
    train_ips = config.batch_size / step
    return {**dataclasses.asdict(config), "image_size": size, "num_classes": classes, "family": entry.family,
            "reference_image_size": entry.image_size, "jit": jit, "compiler": COMPILERS[backend, jit],
            "params": params, "gflops": flops / 1e9, "train_step_seconds": step, "train_images_per_second": train_ips,
            "first_step_seconds": timer.first_step_seconds,
            "inference_images_per_second": inference["inference_images_per_second"],
            "latency_ms": inference["inference_latency_ms"], **memory, "copy_gb_s": bandwidth,
            "peak_gflops": peak / 1e9, "mfu": 3 * flops * train_ips / peak, "host": socket.gethostname(),
            "model_args": dict(config.model_args), "profile": profile, "environment": environment()}


def _model(config: BenchConfig):
    """The configuration's model, seeded, with its image size and class count."""
    from benchbench.models import create_model, model_info

    entry = model_info(config.model)
    size = config.image_size or entry.image_size
    classes = config.num_classes or entry.num_classes
    keras.utils.set_random_seed(0)
    return create_model(config.model, num_classes=classes, image_size=size, **dict(config.model_args)), size, classes


def counted_flops(config: BenchConfig) -> int:
    """Forward FLOPs per image, counted op by op on the TensorFlow graph (`measure.forward_flops`): a process of
    another backend asks a fresh TensorFlow one."""
    if keras.backend.backend() != "tensorflow":
        return child("flops", dataclasses.asdict(config), backend="tensorflow")["flops"]
    from benchbench.measure import forward_flops

    with precision_policy(config.precision):
        model, size, _ = _model(config)
        return forward_flops(model, size)


PROFILE_STEPS = 2  # steps under the profiler, after the timed ones: the op mix, not a speed


def _profile(model, data, steps: int) -> list[dict]:
    from benchbench.measure import profile_op_types

    steps = min(steps, PROFILE_STEPS)
    return profile_op_types(lambda: model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0), steps)


def bench_repeated(config: BenchConfig, repeats: int, settle: float | None = None) -> dict:
    """`bench` in `repeats` fresh processes of the configuration's backend (in this one when it is one repeat on
    this process's backend): the record of the median training speed, with every repeat's speed and MFU. One
    process's figure swings by up to 20 % on these machines (thread placement, allocator state), which a single
    in-process measurement cannot show.

    settle: stop after two processes whose training speeds are within this fraction of each other. The figure
    is the lower median (of two: the slower), so when one process in three is the slow one, as is typical here,
    it is the one a third process would have given whenever the first two are the others."""
    if repeats == 1 and config.backend == keras.backend.backend():
        return bench(config)
    if config.backend != "tensorflow" and not config.gflops:  # counted once, not in every process
        config = dataclasses.replace(config, gflops=counted_flops(config) / 1e9)
    # A profile (asked for) and the inference speed are taken in the first process only, after its timed steps.
    records = []
    for i in range(repeats):
        records.append(child("bench", {**dataclasses.asdict(config), "profile": config.profile and not i,
                                       "inference": config.inference and not i}, backend=config.backend))
        # The first process counted the FLOPs (a trace of the forward pass) and measured the matmul peak (the
        # best of repeated multiplies: 218-224 GFLOP/s over the rows of the 078af6f report, git show
        # 1659898:reports/bench/vm.md): the others take both.
        config = dataclasses.replace(config, gflops=records[0]["gflops"], peak_gflops=records[0]["peak_gflops"])
        if settle is not None and len(records) == 2 and _within(records, settle):
            break
    first = records[0]
    records.sort(key=lambda r: r["train_images_per_second"])
    median = dict(records[(len(records) - 1) // 2])
    median.update({key: first[key] for key in ("inference", "inference_images_per_second", "latency_ms")})
    median["repeats"] = [{key: r.get(key) for key in ("train_images_per_second", "mfu", "copy_gb_s")} for r in records]
    median["profile"] = first["profile"]
    return median


def _within(records: list[dict], fraction: float) -> bool:
    speeds = [r["train_images_per_second"] for r in records]
    return max(speeds) <= (1 + fraction) * min(speeds)


def child(mode: str, payload: dict, backend: str | None = None) -> dict:
    """Runs `python -m benchbench.bench MODE PAYLOAD` (under KERAS_BACKEND=backend when given) and returns the
    JSON record it prints last."""
    import json

    from benchbench.fresh_process import run_json

    return run_json("benchbench.bench", mode, json.dumps(payload), what=f"bench {mode} child",
                    env={"KERAS_BACKEND": backend} if backend else None)
