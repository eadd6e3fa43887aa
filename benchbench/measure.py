"""Cost measurements for a run: forward FLOPs from the traced graph, step timing, latency, memory, environment."""

from __future__ import annotations

import importlib
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import time

import keras
import numpy as np

# Matrix-multiply-like ops: 2 FLOPs per multiply-accumulate. Element-wise ops, normalisations and softmax are
# not counted (the convention of the papers' FLOP figures, which quote multiply-accumulates).
_MATMUL_OPS = {"MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum", "Conv2D",
               "DepthwiseConv2dNative"}


def forward_flops(model: keras.Model, image_size: int) -> int:
    """FLOPs of one image's forward pass, counted op by op on the TensorFlow graph the model traces to."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False), autograph=False)
    graph = fn.get_concrete_function(tf.TensorSpec([1, image_size, image_size, 3], tf.float32)).graph
    return sum(_op_flops(op) for op in graph.get_operations() if op.type in _MATMUL_OPS)


def _op_flops(op) -> int:
    out = [int(d) for d in op.outputs[0].shape]
    if op.type in ("Conv2D", "DepthwiseConv2dNative"):
        kh, kw, cin, _ = (int(d) for d in op.inputs[1].shape)
        per_output = kh * kw * (cin if op.type == "Conv2D" else 1)
        return 2 * math.prod(out) * per_output
    if op.type == "Einsum":
        equation = op.get_attr("equation").decode()
        inputs, output = equation.split("->")
        sizes = {}
        for spec, tensor in zip(inputs.split(","), op.inputs):
            sizes.update(zip(spec, (int(d) for d in tensor.shape)))
        contracted = [sizes[c] for c in set(inputs.replace(",", "")) - set(output)]
        return 2 * math.prod(out) * math.prod(contracted)
    a = [int(d) for d in op.inputs[0].shape]  # MatMul / BatchMatMul: contraction over a's inner axis
    transposed = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
    return 2 * math.prod(out) * (a[-2] if transposed else a[-1])


class StepTimer(keras.callbacks.Callback):
    """Times individual training steps inside fit: whole short fits swing 2x on these machines."""

    def __init__(self, skip: int = 3):
        super().__init__()
        self.skip, self.seen, self.durations = skip, 0, []
        self.first_step_seconds = None  # the first step traces and compiles the training function

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == 1:
            self.first_step_seconds = time.perf_counter() - self._start
        if self.seen > self.skip:
            self.durations.append(time.perf_counter() - self._start)

    def median_step_seconds(self) -> float | None:
        return statistics.median(self.durations) if self.durations else None


class FitPhases(keras.callbacks.Callback):
    """Splits a fit's time by epoch-level hooks only (no batch hooks, which would change how Keras dispatches
    the steps): each epoch's training part (epoch start to validation start, its first trace included) and its
    validation pass; what the fit took beyond their sum is the epochs' boundaries and other callbacks."""

    def __init__(self):
        super().__init__()
        self.seconds = {"train": 0.0, "validation": 0.0}
        self.epochs: list[float] = []  # each epoch's training part: the first holds the trace
        self._mark = None

    def _lap(self, phase: str | None) -> float:
        now, lapped = time.perf_counter(), 0.0
        if phase and self._mark is not None:
            lapped = now - self._mark
            self.seconds[phase] += lapped
        self._mark = now
        return lapped

    def on_epoch_begin(self, epoch, logs=None):
        self._lap(None)

    def on_test_begin(self, logs=None):
        self.epochs.append(self._lap("train"))

    def on_test_end(self, logs=None):
        self._lap("validation")
        self._mark = None  # until the next epoch begins

    def on_epoch_end(self, epoch, logs=None):
        if self._mark is not None:  # an epoch without validation: all of it trained
            self.epochs.append(self._lap("train"))
        self._mark = None


def inference_speed(model: keras.Model, image_size: int, batch_size: int, *, target_seconds: float = 0.1,
                    repeats: int = 5) -> dict:
    """Batch-1 latency (ms) and batch-`batch_size` throughput (images/s) of the compiled forward pass.

    Calling `predict_on_batch` once per pass times Python dispatch as much as the model (a few ms, as long as a
    small model's whole pass on a CPU). Here the passes run back to back inside one compiled loop, each one's
    input depending on the last one's output, so none can be skipped or hoisted (see `_forward_seconds`; a run
    takes a quicker reading than the cost probe and `bench`, whose figures the reports show)."""
    run = _chained_passes_compiled(model, image_size)
    one = np.zeros((1, image_size, image_size, 3), "float32")
    batch = np.zeros((batch_size, image_size, image_size, 3), "float32")
    return {"inference_latency_ms": 1000 * _forward_seconds(run, one, target_seconds, repeats),
            "inference_images_per_second": batch_size / _forward_seconds(run, batch, target_seconds, repeats)}


# The last model's compiled passes: a study worker reuses its model for the next seed of a configuration
# (run/reuse.py), and tracing the loop again took 1.2 s of such a cell's 1.8 s test pass and record (shiftvit_t_light
# on digits). One slot: it keeps at most one model alive beyond its run, like run/reuse.py's.
_last_compiled: tuple | None = None


def _chained_passes_compiled(model: keras.Model, image_size: int):
    global _last_compiled
    if _last_compiled is None or _last_compiled[0] is not model or _last_compiled[1] != image_size:
        _last_compiled = (model, image_size, _compiled(_chained_passes(model), image_size))
    return _last_compiled[2]


def _chained_passes(model: keras.Model):
    def passes(x, count):
        def one(_, carry):  # plus 1e-30 x the mean logit: a true data dependence that leaves the input as it was
            return carry + 1e-30 * keras.ops.cast(keras.ops.mean(model(carry, training=False)), carry.dtype)
        return keras.ops.fori_loop(0, count, one, keras.ops.convert_to_tensor(x))  # torch: not a NumPy array
    return passes


def _forward_seconds(run, x: np.ndarray, target_seconds: float, repeats: int) -> float:
    """Median seconds per pass of `run(x, count)`; `count` is set from a first timed pass so that one repeat
    lasts about `target_seconds` (a pass slower than that: two more single passes)."""
    keras.ops.convert_to_numpy(run(x, np.int32(1)))  # compile and warm up
    start = time.perf_counter()
    keras.ops.convert_to_numpy(run(x, np.int32(1)))
    count = int(min(100, max(1, target_seconds / max(time.perf_counter() - start, 1e-6))))
    times = []
    for _ in range(repeats if count > 1 else 2):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(run(x, np.int32(count)))
        times.append((time.perf_counter() - start) / count)
    return statistics.median(times)


def _compiled(fn, image_size: int):
    """`fn(images, count)` compiled by the backend: one tf.function graph for any batch size, or a jax.jit
    program; torch runs it eagerly, without recording gradients (as its `predict` does)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32),
                                                tf.TensorSpec([], tf.int32)])
    if backend == "jax":
        import jax

        return jax.jit(fn)
    import torch

    return torch.no_grad()(fn)


def copy_bandwidth(megabytes: int = 256, repeats: int = 8) -> float:
    """This process's memory copy rate in GB/s (bytes read plus bytes written), the median of `repeats` NumPy
    copies of a float32 array of `megabytes`, far beyond the caches: one thread, as an element-wise op's share of
    a core sees memory. What is not a matmul in a training step is bound by it, and on a shared machine it moves
    with the neighbours while the matmul peak stays (the bench records it in every process, beside its MFU)."""
    source = np.ones(megabytes * 2**20 // 4, dtype=np.float32)
    target = np.empty_like(source)
    np.copyto(target, source)  # the pages touched before timing
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(target, source)
        seconds.append(time.perf_counter() - start)
    return 2 * source.nbytes / statistics.median(seconds) / 1e9


def reset_peak_memory() -> None:
    """Starts a new peak-memory window, so a run measured inside a long-lived worker reports its own peak."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            tf.config.experimental.reset_memory_stats("GPU:0")
            return
    try:  # Linux: writing 5 resets the process's resident-set high-water mark (VmHWM), see proc(5)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_memory() -> dict:
    """Peak accelerator memory where there is one, else the process's peak resident set size since the last
    `reset_peak_memory()`."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return {"peak_memory_mb": tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20,
                    "memory_kind": "gpu_peak"}
    try:
        with open("/proc/self/status") as f:
            kib = int(re.search(r"^VmHWM:\s*(\d+) kB", f.read(), re.M).group(1))
    except (OSError, AttributeError):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # whole-process peak (Linux reports KiB)
    return {"peak_memory_mb": kib / 1024, "memory_kind": "host_peak_rss"}


def environment() -> dict:
    info = {"python": platform.python_version(), "keras": keras.__version__, "backend": keras.backend.backend(),
            "numpy": np.__version__, "platform": platform.platform(), "device": _device(), "cpu_count": os.cpu_count(),
            "git_commit": _git_commit()}
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["gpus"] = len(tf.config.list_physical_devices("GPU"))
    else:  # jax or torch: the framework's version
        info[keras.backend.backend()] = importlib.import_module(keras.backend.backend()).__version__
    info.update(_placement())
    return info


def _placement() -> dict:
    """Where a worker ran on a cluster: its host, the GPUs SLURM gave it (CUDA_VISIBLE_DEVICES, set per task with
    --gpus-per-task) and its SLURM job and array task."""
    import socket

    placed = {"host": socket.gethostname()}
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        placed["cuda_visible_devices"] = os.environ["CUDA_VISIBLE_DEVICES"]
    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    if job:
        task = os.environ.get("SLURM_ARRAY_TASK_ID")
        placed["slurm_job"] = f"{job}_{task}" if task is not None else job
    return placed


def _device() -> str:
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    try:
        with open("/proc/cpuinfo") as f:
            match = re.search(r"model name\s*:\s*(.+)", f.read())
        return f"CPU: {match.group(1).strip()}" if match else "CPU"
    except OSError:
        return f"CPU: {platform.processor() or 'unknown'}"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=os.path.dirname(__file__), capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def profile_op_types(fn, steps: int, top: int = 15) -> list[dict]:
    """Runs `fn()` (which should execute `steps` training steps) under the TensorFlow profiler and returns the
    op types that took the most time: [{"op", "ms_per_step", "share"}], share of all op time.

    Reads the profiler's XSpace protobuf directly (no TensorBoard needed): every event on the executor's
    compute threads is one op execution; the executor's own wrapper events are skipped. Ops that run
    concurrently on both threads each count their full duration, so shares are of op time, not wall time."""
    import collections
    import glob
    import tempfile

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            fn()
        finally:
            tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        with open(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0], "rb") as f:
            space.ParseFromString(f.read())
    seconds = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name not in ("ExecutorState::Process", "ParallelFor"):
                    op = name.rsplit(":", 1)[-1].removeprefix("_Mkl").removeprefix("Native")
                    seconds[op] += event.duration_ps / 1e12
    total = sum(seconds.values()) or 1.0
    return [{"op": op, "ms_per_step": 1000 * s / steps, "share": s / total} for op, s in seconds.most_common(top)]
