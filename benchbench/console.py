"""What benchbench shows on a terminal: lines flushed as they happen, and a backend start-up without the
native libraries' noise."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable

_status = ""  # the status line drawn under the output on a terminal ("" when none is shown)
CLEAR_LINE = "\r\x1b[K"  # back to the line's start, erase it


def echo(line: str) -> None:
    """Prints a line, flushed (worker processes share the terminal: no line may wait in a buffer); on a
    terminal, above the status line, which is drawn again under it."""
    if _status:
        sys.stdout.write(f"{CLEAR_LINE}{line}\n{_status}")
        sys.stdout.flush()
    else:
        print(line, flush=True)


def live() -> bool:
    """Whether stdout is a terminal (a status line can be redrawn there)."""
    return sys.stdout.isatty()


def status(text: str) -> None:
    """On a terminal, one line under the output redrawn in place (a study's progress); elsewhere (SLURM logs,
    CI, a pipe) nothing: plain lines already say it. Cut to the terminal's width, or it would wrap and leave
    copies behind. `status("")` takes the line away."""
    global _status
    if not live():
        return
    import shutil

    _status = text[:shutil.get_terminal_size().columns - 1]
    sys.stdout.write(CLEAR_LINE + _status)
    sys.stdout.flush()


def clear_status() -> None:
    """Takes the status line away, if one is shown (before an error or the end of a command)."""
    if _status:
        status("")


def relay(processes: list, poll: Callable[[], str], seconds: float = 2.0) -> list[int]:
    """Waits for processes started with stdout and stderr piped, printing their lines through echo (stderr's
    to stderr) and, every `seconds`, `poll()` as the status line; returns their exit codes. One process owns
    the terminal, so the workers' lines and the status line do not garble each other."""
    import threading

    lock = threading.Lock()

    def pump(stream, to_stderr: bool) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="backslashreplace").rstrip("\n")
            with lock:
                if to_stderr:
                    sys.stdout.write(CLEAR_LINE if _status else "")
                    sys.stdout.flush()
                    print(line, file=sys.stderr, flush=True)
                    sys.stdout.write(_status)
                    sys.stdout.flush()
                else:
                    echo(line)

    pumps = [threading.Thread(target=pump, args=(stream, stream is process.stderr), daemon=True)
             for process in processes for stream in (process.stdout, process.stderr)]
    for thread in pumps:
        thread.start()
    text = ""
    try:
        while any(process.poll() is None for process in processes):
            try:
                text = poll()
            except Exception:  # noqa: BLE001 -- a storage blip costs one refresh of the line, not the study
                pass
            with lock:
                status(text)
            time.sleep(seconds)
        for thread in pumps:  # the processes' last lines
            thread.join(timeout=5)
    finally:  # on Ctrl-C too: the caller's lines must not land on the status line
        with lock:
            status("")
    return [process.wait() for process in processes]


VERBOSE_ENV = "BENCHBENCH_VERBOSE"  # set by --verbose; the worker processes a command starts inherit it


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV) == "1"


@contextlib.contextmanager
def verbosity(on: bool):
    """--verbose for the duration of one command (and the processes it starts, through the environment)."""
    before = os.environ.get(VERBOSE_ENV)
    if on:
        os.environ[VERBOSE_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(VERBOSE_ENV, None)
        else:
            os.environ[VERBOSE_ENV] = before


def import_backend_quietly() -> None:
    """Imports Keras and its backend with native stderr muted, unless --verbose.

    TensorFlow's C++ libraries log CUDA probing, CPU-feature and oneDNN notes before absl logging is
    initialised, so TF_CPP_MIN_LOG_LEVEL cannot silence them; and TensorFlow's Python logger warns about
    retracing when a search tries several batch sizes. For a CLI user both are noise; --verbose shows them
    (and every C++ log line). Python errors and Keras' own warnings still surface.
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if verbose():
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        import keras  # noqa: F401

        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
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
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # "N out of the last M calls ... retracing"


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


_resend = None  # the write end of the pipe to the thread that sends a signal again (see stop_on_sigterm)
_held: list[int] | None = None  # SIGTERM/SIGINT that arrived while held (see hold_signals); None: not holding
_stopping: int | None = None  # the last SIGTERM/SIGINT raised or re-sent (see stop_requested)


def stop_requested() -> KeyboardInterrupt | None:
    """The stop a signal asked for (Terminated or KeyboardInterrupt), or None: for code that catches ordinary
    errors, because C code that called back into Python can turn the signal's exception into another error
    (TensorFlow's nest flattening reports it as unraisable and fails with a ValueError)."""
    if _stopping is None:
        return None
    import signal

    return Terminated() if _stopping == signal.SIGTERM else KeyboardInterrupt()


def hold_signals() -> None:
    """From now on SIGTERM and SIGINT are noted, not raised, until release_signals()."""
    global _held
    if _held is None:
        _held = []


def release_signals() -> None:
    """Delivers the first signal held since hold_signals(), if any, and stops holding."""
    global _held
    pending, _held = _held, None
    if pending:
        os.kill(os.getpid(), pending[0])


@contextlib.contextmanager
def signals_held():
    """SIGTERM and SIGINT that arrive inside the block are delivered when it ends (a worker giving its cell back
    must not be cut short by the next signal); inside an earlier hold_signals(), they stay held. Blocking them
    with pthread_sigmask would not do: Python runs its handlers in the main thread whichever thread took them."""
    outer = _held is not None
    hold_signals()
    try:
        yield
    finally:
        if not outer:
            release_signals()


def stop_on_sigterm() -> None:
    """SIGTERM raises Terminated, SIGINT KeyboardInterrupt, at the next line of the main thread; once per
    process (later calls do nothing).

    A signal that lands while Python runs a finalizer (a weakref callback, __del__) raises there, where Python
    cannot propagate it: it would print "Exception ignored ... Traceback" and carry on. The unraisable hook
    sends it again instead, through a helper thread, a moment later. A signal that lands inside the hook itself
    (the helper's own resend, when the main thread is slow) is deferred the same way rather than raised there.
    """
    global _resend
    import signal
    import threading
    import time

    if _resend is not None:
        return
    wake, _resend = os.pipe()

    def resend_forever() -> None:
        while True:
            signum = os.read(wake, 1)[0]
            time.sleep(0.01)
            os.kill(os.getpid(), signum)

    def later(signum: int) -> None:
        global _stopping
        _stopping = signum
        os.write(_resend, bytes([signum]))  # one C call: nothing in it for a signal to land on

    def stop(signum, frame):
        global _stopping
        if _held is not None:
            return _held.append(signum)
        if frame is not None and frame.f_code in (redeliver.__code__, later.__code__):
            return later(signum)
        _stopping = signum
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    def redeliver(unraisable) -> None:
        # A second signal can land while the first unwinds the finalizer: it arrives as the first's __context__.
        # C code can wrap it: "SystemError: <built-in function __import__> returned a result with an exception
        # set", caused by the signal's exception, which TensorFlow's nest flattening reports as unraisable.
        error, resent = unraisable.exc_value, False
        cause = getattr(error, "__cause__", None)
        if not isinstance(error, KeyboardInterrupt) and isinstance(cause, KeyboardInterrupt):
            error = cause
        while isinstance(error, KeyboardInterrupt):
            later(signal.SIGTERM if isinstance(error, Terminated) else signal.SIGINT)
            error, resent = error.__context__, True
        if not resent:
            sys.__unraisablehook__(unraisable)

    threading.Thread(target=resend_forever, name="benchbench-resend-signal", daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.unraisablehook = redeliver


def error(error: BaseException | str, code: int) -> int:
    """Prints `benchbench: error: ...` (one line, passwords masked) and returns the exit status."""
    from benchbench.redact import redact

    clear_status()
    message = _os_error(error) if isinstance(error, OSError) and not isinstance(error, FileExistsError) else error
    print(f"benchbench: error: {redact(first_line(message))}", file=sys.stderr)
    return code


def interrupted(interrupt: KeyboardInterrupt) -> int:
    clear_status()
    terminated = isinstance(interrupt, Terminated)
    print(f"benchbench: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
    return 143 if terminated else 130


def first_line(error: BaseException | str) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _os_error(error: OSError) -> str:
    where = f": {error.filename}" if error.filename else ""
    return f"{error.strerror or error}{where}"
