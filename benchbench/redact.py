"""Secrets never leave the process: passwords in database URLs are masked in everything benchbench prints,
logs or hands to W&B (which saves the command line of every run it records)."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator

MASK = "***"
# scheme://user:password@host -- the password is everything between the user's colon and the last '@' before
# the host (a password may itself hold '@' or ':').
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^\s/]*)(?P<tail>@)")


def redact(text: str) -> str:
    """`text` with the password of every URL in it masked."""
    return _URL_PASSWORD.sub(lambda m: m["head"] + MASK + m["tail"], text)


@contextlib.contextmanager
def redacted_argv() -> Iterator[None]:
    """sys.argv with passwords masked while the body runs: for libraries that record the command line (W&B
    saves it in every run's metadata, uploaded by `wandb sync`)."""
    original = sys.argv
    sys.argv = [redact(arg) for arg in original]
    try:
        yield
    finally:
        sys.argv = original
