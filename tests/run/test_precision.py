"""precision = "auto" (run/precision.py): a measured choice per machine, cached, recorded in each run."""

from __future__ import annotations

import json

import pytest

from benchbench.run import precision
from benchbench.run.config import RunConfig


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder of the test's own, and no choice remembered by this process."""
    monkeypatch.setenv("BENCHBENCH_CACHE", str(tmp_path / "cache"))
    precision.choice.cache_clear()
    yield tmp_path / "cache"
    precision.choice.cache_clear()


def cached_choice(folder, chosen: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"precision-{precision.machine_key()}.json").write_text(json.dumps({"precision": chosen}))


def test_the_probe_measures_once_per_machine_and_its_choice_follows_the_margin(cache, monkeypatch):
    chosen = precision.resolve("auto")  # measured now, in a fresh process
    (path,) = cache.glob("precision-*.json")
    result = json.loads(path.read_text())
    assert chosen == result["precision"] in ("fp32", "bf16")
    assert (result["bf16_speedup"] >= precision.MARGIN) == (chosen == "bf16")
    assert all(steps["fp32"] > 0 and steps["bf16"] > 0 for steps in result["step_seconds"].values())
    assert result["bf16_speedup"] == min(result["speedups"].values())  # bf16 only if every probe model gains
    print(f"precision probe: bf16 vs fp32 {result['speedups']} on {result['device']}: {chosen}")
    precision.choice.cache_clear()  # a new process: reads the file, measures nothing
    monkeypatch.setattr("benchbench.fresh_process.run_json", lambda *a, **k: pytest.fail("probed again"))
    assert precision.resolve("auto") == chosen
    assert precision.resolve("fp32") == "fp32" and precision.resolve("bf16") == "bf16"


def test_a_run_with_auto_trains_in_the_machines_choice_and_records_it(cache, tmp_path):
    from benchbench.run.train import execute

    cached_choice(cache, "bf16")  # as on a machine where bf16 trains faster
    config = RunConfig("vit_tiny", "synthetic", epochs=1, batch_size=32, image_size=32, precision="auto",
                       model_args=(("depth", 1), ("patch_size", 8)))
    record = execute(config, out_dir=str(tmp_path / "runs"), verbose=0, tracking="none")
    assert record["config"]["precision"] == "auto" and record["resolved"]["precision"] == "bf16"
    assert record["config_hash"] == config.hash()  # the cell stays the same whichever machine ran it
    costs_config = RunConfig.from_resolved(record["config"])
    assert costs_config.precision == "auto"


def test_a_study_trains_in_auto_unless_its_recipe_names_a_precision(tmp_path):
    from benchbench.study.file import load_study
    from support.studies import write_study

    default = write_study(tmp_path, "default", datasets=["synthetic"], models=["vit_tiny"], seeds=[0], precision=None)
    named = write_study(tmp_path, "named", datasets=["synthetic"], models=["vit_tiny"], seeds=[0], precision="fp32")
    assert {cell.precision for cell in load_study(default).cells} == {"auto"}
    assert {cell.precision for cell in load_study(named).cells} == {"fp32"}
