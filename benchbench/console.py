"""What benchbench shows on a terminal: lines flushed as they happen, and a backend start-up without the
native libraries' noise."""

from __future__ import annotations

import os
import sys


def echo(line: str) -> None:
    print(line, flush=True)  # worker processes share the terminal: no line may wait in a buffer


def import_backend_quietly() -> None:
    """Imports Keras and its backend with native stderr muted.

    TensorFlow's C++ libraries log CUDA probing and CPU-feature notes before absl logging is initialised, so
    TF_CPP_MIN_LOG_LEVEL cannot silence them; for a CLI user they are noise. Python errors still surface.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras

            keras.ops.zeros(1)  # the backend's device probing also happens on first use
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    import logging

    logging.getLogger("absl").setLevel(logging.ERROR)  # TFDS warns about folders it merely probed
