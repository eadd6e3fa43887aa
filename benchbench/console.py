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


def start() -> None:
    """Once per command: SIGTERM unwinds like Ctrl-C (see Terminated), and paths that are not valid UTF-8
    (Linux allows any bytes) print escaped instead of failing the command that prints them."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    stop_on_sigterm()


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a scheduler ending a job): unwinds exactly like Ctrl-C -- the running cell is marked
    interrupted, what finished is written -- and the command exits 143 instead of 130."""


def stop_on_sigterm() -> None:
    import signal

    def terminate(signum, frame):
        raise Terminated()

    def redeliver(unraisable) -> None:
        # A signal that lands while Python runs a finalizer (a weakref callback, __del__) raises there, where
        # Python cannot propagate it: it would print "Exception ignored ... Traceback" and carry on. Send the
        # signal again instead, from a helper thread a moment later, to be raised at an ordinary line.
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            import threading

            signum = signal.SIGTERM if isinstance(unraisable.exc_value, Terminated) else signal.SIGINT
            threading.Timer(0.01, os.kill, (os.getpid(), signum)).start()
        else:
            sys.__unraisablehook__(unraisable)

    signal.signal(signal.SIGTERM, terminate)
    sys.unraisablehook = redeliver


def error(error: BaseException | str, code: int) -> int:
    """Prints `benchbench: error: ...` (one line, passwords masked) and returns the exit status."""
    from benchbench.redact import redact

    message = _os_error(error) if isinstance(error, OSError) and not isinstance(error, FileExistsError) else error
    print(f"benchbench: error: {redact(first_line(message))}", file=sys.stderr)
    return code


def interrupted(interrupt: KeyboardInterrupt) -> int:
    terminated = isinstance(interrupt, Terminated)
    print(f"benchbench: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
    return 143 if terminated else 130


def first_line(error: BaseException | str) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _os_error(error: OSError) -> str:
    where = f": {error.filename}" if error.filename else ""
    return f"{error.strerror or error}{where}"
