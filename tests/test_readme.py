"""README as tested documentation: every `sh` block runs, in the README's order, in one fresh folder, as a new
user pasting them would run them. A block that cannot run here in under a minute (the test suite, long studies,
downloads, a cluster) says so on the line above it: `<!-- untested: why -->`, invisible on GitHub."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import textwrap
import time

import pytest

from support.env import TESTS, scrubbed_env

README = TESTS.parent / "README.md"
FENCE = re.compile(r"^(?P<indent> *)```sh\n(?P<body>.*?)^(?P=indent)```$", re.M | re.S)
UNTESTED = re.compile(r"<!-- untested: (?P<why>[^>]*\S[^>]*) -->")
LINKED = (".venv", "studies")  # what the blocks use from the repository: everything they write goes elsewhere


@dataclasses.dataclass
class Block:
    line: int
    body: str
    untested: str | None  # the reason, for a block marked untested


def blocks(text: str) -> list[Block]:
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip().splitlines()
        marker = UNTESTED.search(before[-1]) if before else None
        found.append(Block(line=text[:match.start()].count("\n") + 1, body=textwrap.dedent(match["body"]),
                           untested=marker["why"] if marker else None))
    return found


def test_the_extractor_finds_blocks_and_their_marks():
    text = "intro\n\n```sh\necho one\n```\n\n<!-- untested: slow -->\n  ```sh\n  echo two\n  ```\n"
    assert blocks(text) == [Block(3, "echo one\n", None), Block(8, "echo two\n", "slow")]


@pytest.mark.slow
def test_every_readme_shell_block_runs(tmp_path):
    """About 100 s on 2 cores: the blocks train four small runs, scan an image folder and bench a model."""
    every = blocks(README.read_text())
    tested = [block for block in every if block.untested is None]
    assert len(every) >= 12 and len(tested) >= 6, [block.line for block in every]
    for name in LINKED:
        (tmp_path / name).symlink_to(TESTS.parent / name)
    env = scrubbed_env(home=tmp_path, WANDB_MODE="offline")
    for block in tested:
        start = time.perf_counter()
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", block.body], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=180)
        seconds = time.perf_counter() - start
        assert result.returncode == 0, f"README line {block.line}:\n{block.body}\n{result.stderr[-2000:]}"
        if seconds > 60:
            pytest.fail(f"README line {block.line} took {seconds:.0f} s: mark it <!-- untested: why --> or shorten it")
