"""A small file system for full-disk tests: a tmpfs of a few MiB mounted on a test's folder (root only; the
test is skipped where mounting is not allowed)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_disk(path: Path, size_mb: int) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def resize(path: Path, size_mb: int) -> None:
    """Grows (or shrinks) the mounted tmpfs in place; its files stay."""
    subprocess.run(["mount", "-o", f"remount,size={size_mb}m", str(path)], check=True)


def read_only(path: Path) -> None:
    """Makes the mounted tmpfs read-only (root ignores file modes, not a read-only mount)."""
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
