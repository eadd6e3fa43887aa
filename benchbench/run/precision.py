"""precision = "auto": bf16 mixed precision where this machine trains faster in it, fp32 everywhere else.

The answer is measured, not looked up in a list of CPU names: a short probe in a fresh process times the
training steps of two small models at 32 px, batch 64, in fp32 and in bf16 -- a ViT (two DeiT-Ti blocks: its
steps are matrix multiplies) and a ShiftViT (two stages of ShiftViT-T-light at half width: its steps are
mostly element-wise work), in alternating rounds -- and picks bf16 only if it is at least MARGIN faster for
both. bf16 has to buy real speed for every kind of model to be chosen, because `auto` must never make a run
slower than fp32: on
CPUs without bf16 matrix units (AMD EPYC here) bf16 trains at 0.87-1.09x fp32 (issue 7's measurements); on
an Intel Xeon with AMX, bf16 matrix multiplies run about 3x fp32, but ShiftViT trained at 1.0x.

The choice is cached per machine (CPU model and flags, GPUs, TensorFlow and Keras versions) under
$BENCHBENCH_CACHE or ~/.cache/benchbench, so the probe costs one fresh process (about 30 s) once. The run
record's `resolved.precision` says what `auto` became; the config (and its hash) keeps `auto`, so a study's
cells are the same whichever machine runs them, and each worker decides for its own hardware.

    python -m benchbench.run.precision_probe   # measures and prints the probe's JSON (nothing cached)
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import re
from pathlib import Path

from benchbench import io

MARGIN = 1.15  # bf16 steps must be at least this much faster than fp32 ones
PROBE_VERSION = 2  # part of the cache key: a changed probe measures again
TIMEOUT_SECONDS = 600


def resolve(precision: str) -> str:
    """The concrete precision to train in: `precision` itself, or what "auto" means on this machine."""
    return choice()["precision"] if precision == "auto" else precision


def cache_file() -> Path:
    return io.cache_dir() / f"precision-{machine_key()}.json"


@functools.cache
def choice() -> dict:
    """This machine's probe result, from the cache or measured now (once per process)."""

    path = cache_file()
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    result = probe()
    io.write_json(path, result)
    return result


def probe() -> dict:
    """The probe (run/precision_probe.py) measured now, in a fresh process, not cached (`make bench` shows it)."""
    from benchbench.fresh_process import run_json

    return run_json("benchbench.run.precision_probe", what="the precision probe", timeout=TIMEOUT_SECONDS)


@functools.cache
def machine_key() -> str:
    """A digest of what decides bf16's speed here: the CPU model and flags, the GPUs, the framework versions."""
    import keras
    import tensorflow as tf

    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
        flags = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.M)
        cpu = [model.group(1).strip() if model else "", sorted(flags.group(1).split()) if flags else []]
    except OSError:
        cpu = [platform.processor()]
    gpus = [tf.config.experimental.get_device_details(gpu).get("device_name", "GPU")
            for gpu in tf.config.list_physical_devices("GPU")]
    facts = [PROBE_VERSION, cpu, gpus, tf.__version__, keras.__version__, keras.backend.backend()]
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:16]
