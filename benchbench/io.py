"""Every file benchbench writes goes through here: written to a unique temporary name beside its target,
flushed and fsynced, renamed over the target, and the directory fsynced. A reader (or a worker killed
mid-write, or a second worker writing the same file) never sees a half-written file, and many workers can
write side by side: temporary names are unique per call, never fixed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# The leftovers of a writer killed mid-write are named TMP_PREFIX + the target's name + a unique part.
TMP_PREFIX = ".tmp."
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # (read once: mkstemp/mkdtemp create private files, published ones get the usual mode)


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
SPACE_MARGIN = 1 << 20  # bytes a sized write leaves free: file system metadata, the directory entry


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_path(path: Path, suffix: str = "") -> Path:
    fd, name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", suffix=suffix, dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)
    os.close(fd)
    return Path(name)


def remove_leftovers(directory: Path) -> list[Path]:
    """Removes the temporaries that writers killed mid-write (kill -9 between creating and renaming) left in
    `directory`, and returns them. Only for a directory one process owns at the time (a locked run directory):
    elsewhere a leftover may be another worker's write in progress."""
    found = sorted(Path(directory).glob(f"{TMP_PREFIX}*"))
    for path in found:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return found


class DiskFullError(RuntimeError):
    """No space left where benchbench writes: the message names the file and the space that is free."""


def _disk_full(path: Path) -> DiskFullError:
    free = shutil.disk_usage(path.parent).free if path.parent.exists() else 0
    return DiskFullError(f"no space left on the device writing {path} ({free / 2**20:.1f} MiB free); free some "
                         "space and run the command again (what finished is kept)")


def atomic_write(path: str | Path, write: Callable[[Path], None], *, suffix: str = "", size: int = 0) -> Path:
    """Calls `write(temp_path)` on a unique temporary file beside `path`, then makes it `path` durably.

    `suffix` ends the temporary name for writers that insist on an extension (Keras: `.weights.h5`); `size`,
    the bytes the write needs at least, is checked against the free space first (h5py crashes the process on
    a full disk instead of raising). On any error the temporary file is removed and the target is left as it
    was; a full disk is a DiskFullError."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if size and shutil.disk_usage(path.parent).free < size + SPACE_MARGIN:
            raise _disk_full(path)
        tmp = _temp_path(path, suffix)
    except OSError as error:
        if error.errno in _NO_SPACE:
            raise _disk_full(path) from None
        raise
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        if error.errno in _NO_SPACE:
            raise _disk_full(path) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def cache_dir() -> Path:
    """Where benchbench keeps what it measured or indexed once per machine: $BENCHBENCH_CACHE, else
    $XDG_CACHE_HOME/benchbench, else ~/.cache/benchbench."""
    if os.environ.get("BENCHBENCH_CACHE"):
        return Path(os.environ["BENCHBENCH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "benchbench"


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | Path, value: Any, *, indent: int | None = 1) -> Path:
    return write_text(path, json.dumps(value, indent=indent))


def write_csv(path: str | Path, frame) -> Path:
    """A pandas DataFrame as CSV, without its index."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def save_arrays(path: str | Path, arrays: list | dict) -> Path:
    """NumPy arrays as an uncompressed .npz: positional (arr_0, arr_1, ...) from a list, named from a dict."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            if isinstance(arrays, dict):
                np.savez(f, **arrays)
            else:
                np.savez(f, *arrays)

    values = arrays.values() if isinstance(arrays, dict) else arrays
    return atomic_write(path, write, size=sum(np.asarray(a).nbytes for a in values))


def load_arrays(path: str | Path) -> list:
    """The arrays of a `save_arrays` file, in order. Never unpickles: a file holding objects is refused."""
    import numpy as np

    with np.load(path, allow_pickle=False) as archive:
        return [archive[f"arr_{i}"] for i in range(len(archive.files))]


def load_named_arrays(path: str | Path) -> dict:
    """The arrays of a `save_arrays` file written from a dict, by name. Never unpickles."""
    import numpy as np

    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def save_weights(model, path: str | Path) -> Path:
    """Keras weights (`.weights.h5`)."""
    return atomic_write(path, lambda tmp: model.save_weights(tmp), suffix=".weights.h5", size=_nbytes(model))


def _nbytes(model) -> int:
    import numpy as np

    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.weights)


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yields a fresh temporary directory beside `target`; when the body finishes, every file in it is
    fsynced and the directory replaces `target` whole. Concurrent writers of one target each publish a
    complete directory (the last one stays); a failing body leaves `target` untouched and no temporary."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{target.name}.", dir=target.parent))
    tmp.chmod(0o777 & ~_UMASK)
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file():
                with open(file, "rb+") as f:
                    os.fsync(f.fileno())
        _fsync_dir(tmp)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(target.parent)


def _swap_in(tmp: Path, target: Path, attempts: int = 100) -> None:
    """Renames `tmp` to `target`, moving an existing `target` aside first (rename cannot replace a non-empty
    directory). Another writer may publish in between: then its directory is moved aside in turn."""
    retired = []
    try:
        for _ in range(attempts):
            try:
                os.rename(tmp, target)
                return
            except OSError as error:
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise  # not a directory already there: a file in the way, permissions, a full disk
            old = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{target.name}.old.", dir=target.parent))
            retired.append(old)
            try:
                os.replace(target, old)  # `old` is an empty directory, which rename may replace
            except FileNotFoundError:  # another writer moved it first
                pass
        raise OSError(f"could not publish {target}: other writers kept replacing it")
    finally:
        for old in retired:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def held(path: str | Path, what: str) -> Iterator[None]:
    """An exclusive lock on the file `path` (created beside its target) while the body runs, or at once a
    RuntimeError saying `what` is in use. The kernel releases it when its holder dies, so a killed run never
    leaves a stale lock; the file is removed on the way out."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"{what} is in use by another process; wait for it to finish, or choose another "
                               "--out") from None
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
