"""`benchbench models` in well under a second: the model catalogue (parameter counts of each reference model
included) read from `model_catalogue.json` beside this module, without importing Keras, instead of building
every model (15-20 s on 2 cores).

The file is written from the registry by `make catalogue` (`python -m benchbench.model_catalogue`), and a test
compares it with the registry's models built afresh, so a model added without refreshing it fails the suite."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

from benchbench.registry import Registry

FILE = Path(__file__).with_name("model_catalogue.json")


def rows(pattern: str = "*") -> list[dict[str, str]]:
    """The catalogue rows of the models matching an fnmatch pattern; a ValueError (suggesting names) when none."""
    every = json.loads(FILE.read_text())["models"]
    found = [row for row in every if fnmatch.fnmatchcase(row["model"], pattern)]
    if not found:
        names: Registry[None] = Registry("model")
        for row in every:
            names.add(row["model"], None)
        raise ValueError(names.unknown_message(pattern).replace("unknown model", "no model matches"))
    return found


def write() -> Path:
    """Builds every registered model's reference configuration and writes the catalogue file."""
    from benchbench import io
    from benchbench.models import catalogue

    return io.write_json(FILE, {"models": catalogue()}, indent=1)


if __name__ == "__main__":
    print(f"wrote {write()}")
