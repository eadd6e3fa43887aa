"""`benchbench run`: the record it writes, bitwise reproducibility, SIGKILL-and-resume, and bad input."""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from support.cli import main, run_cli, start_cli
from support.data import pipeline_images_per_second

ARGS = ["--model", "vit_tiny", "--dataset", "synthetic", "--epochs", "3", "--batch-size", "32",
        "--set", "model.depth=2", "--set", "warmup_fraction=0.2", "--tracking", "none"]


def run_dir(out: Path) -> Path:
    (only,) = [p for p in out.iterdir() if p.is_dir()]
    return only


def weights(path: Path) -> dict:
    arrays = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    result = run_cli("run", *ARGS, "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_run_writes_a_complete_record(reference):
    out, result = reference
    assert result.stderr == ""  # no TensorFlow log lines without --verbose (test_cli.py shows them with it)
    last = json.loads(result.stdout.strip().splitlines()[-1])
    record = json.loads((run_dir(out) / "run.json").read_text())
    assert last == record
    assert record["config"]["model_args"] == {"depth": 2} and len(record["config_hash"]) == 12
    assert len(record["metrics"]["history"]) == 3
    assert record["metrics"]["history"][-1]["epoch"] == 3
    assert record["metrics"]["best_val_top1"] == max(h["val_top1"] for h in record["metrics"]["history"])
    # The class-coloured synthetic data is learnable: three epochs beat chance (10 %) clearly.
    assert record["metrics"]["test_top1"] > 0.3
    assert record["params"] > 1e5 and record["gflops"] > 0.01
    assert record["train_images_per_second"] > 0 and record["inference_latency_ms"] > 0
    assert record["peak_memory_mb"] > 0 and record["wall_seconds"] > 0
    env = record["environment"]
    assert env["backend"] == "tensorflow" and env["keras"] and env["tensorflow"] and env["git_commit"]
    assert sorted(p.name for p in run_dir(out).iterdir()) == ["best.weights.h5", "predictions.npz", "run.json",
                                                               "state.json"]
    assert record["predictions"] == "predictions.npz" and 0 <= record["metrics"]["test_ece"] <= 1


@pytest.mark.slow
def test_input_pipeline_outpaces_the_model(reference):
    """The pipeline at the run's image size, batch and augmentation delivers over 5x the images/s the model
    trained at. Measured on digits' 1,257-image epochs: synthetic's 256-image epochs would mostly time the
    fixed per-epoch set-up, which real data sets amortise over thousands of images."""
    out, _ = reference
    record = json.loads((run_dir(out) / "run.json").read_text())
    pipeline = pipeline_images_per_second("digits", image_size=32, batch_size=32, epochs=4)
    assert pipeline > 5 * record["train_images_per_second"], (pipeline, record["train_images_per_second"])


@pytest.mark.slow
def test_same_command_twice_is_bitwise_identical(reference, tmp_path):
    """The same command on a finished run prints its result; with --rerun it trains again, beside it, to the
    same bits."""
    out, first = reference
    again = run_cli("run", *ARGS, "--out", str(out))
    assert again.returncode == 0 and again.stdout.startswith("finished already"), again.stderr[-3000:]
    assert json.loads(again.stdout.splitlines()[-1]) == json.loads(first.stdout.splitlines()[-1])
    shutil.copytree(out, tmp_path / "out")
    rerun = run_cli("run", *ARGS, "--out", str(tmp_path / "out"), "--rerun")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    original, fresh = sorted((tmp_path / "out").iterdir())
    assert fresh.name == f"{original.name}-rerun1" and json.loads(rerun.stdout.splitlines()[-1])["run_id"] == fresh.name
    a = json.loads((original / "run.json").read_text())["metrics"]
    b = json.loads((fresh / "run.json").read_text())["metrics"]
    assert a == b
    wa, wb = weights(original / "best.weights.h5"), weights(fresh / "best.weights.h5")
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


def test_a_run_that_reuses_the_last_seeds_traced_model_equals_a_fresh_process(reference, tmp_path, capsys):
    """run/reuse.py: seed 0 run in a process that just trained seed 1 of the same configuration gets that model
    back, re-initialised, with its traced functions (measure.py's compiled inference passes too); its results are
    bitwise the fresh process's."""
    from benchbench import measure
    from benchbench.run import reuse

    out, _ = reference
    reuse.forget()
    assert main(["run", *ARGS, "--seed", "1", "--out", str(tmp_path / "one")], capsys)[0] == 0
    kept, passes = reuse._kept[1], measure._last_compiled[2]
    assert main(["run", *ARGS, "--out", str(tmp_path / "zero")], capsys)[0] == 0
    assert reuse._kept[1] is kept  # the same model object trained both seeds
    assert measure._last_compiled[2] is passes  # and its inference timing did not trace its passes again
    a = json.loads((run_dir(out) / "run.json").read_text())["metrics"]
    b = json.loads((run_dir(tmp_path / "zero") / "run.json").read_text())["metrics"]
    assert a == b
    wa, wb = weights(run_dir(out) / "best.weights.h5"), weights(run_dir(tmp_path / "zero") / "best.weights.h5")
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)
    reuse.forget()


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_run(reference, tmp_path):
    out, _ = reference
    process = start_cli("run", *ARGS, "--out", str(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    state = None
    while time.time() < deadline and process.poll() is None:
        states = list(tmp_path.glob("*/state.json"))
        if states and json.loads(states[0].read_text())["epoch"] >= 1:
            state = states[0]
            break
        time.sleep(0.2)
    assert state is not None, "the run never finished an epoch"
    os.kill(process.pid, signal.SIGKILL)  # mid-way through epoch 2
    process.wait()
    assert not (state.parent / "run.json").exists()

    resumed = run_cli("run", *ARGS, "--out", str(tmp_path), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = json.loads((run_dir(out) / "run.json").read_text())["metrics"]
    b = json.loads((state.parent / "run.json").read_text())["metrics"]
    assert a == b
    wa, wb = weights(run_dir(out) / "best.weights.h5"), weights(state.parent / "best.weights.h5")
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


def test_report_on_a_folder_of_single_runs(reference, tmp_path, capsys):
    """`benchbench report runs/`: the leaderboard of the run.json files in a folder, said to be single runs."""
    out, _ = reference
    code, stdout, err = main(["report", str(out), "--out", str(tmp_path)], capsys)
    assert code == 0, err
    board = (tmp_path / out.name / "leaderboard.md").read_text()
    assert "Single runs of `benchbench run`" in board and "**Protocol**: none: single runs" in board
    assert "| `vit_tiny` |" in board and "## synthetic" in board
    assert (tmp_path / out.name / "reliability_synthetic.png").exists()  # the run's saved test predictions


def test_a_finished_run_prints_its_result_and_an_unfinished_one_says_what_to_do(reference, tmp_path, capsys):
    out, _ = reference
    code, stdout, _ = main(["run", *ARGS, "--out", str(out)], capsys)
    record = json.loads((run_dir(out) / "run.json").read_text())
    assert code == 0 and json.loads(stdout.splitlines()[-1]) == record
    summary = stdout.splitlines()[:4]
    assert summary[0].startswith("finished already") and f"test top-1 {100 * record['metrics']['test_top1']:.1f} %" \
        in summary[1] and f"files: {run_dir(out)}/  run.json (the record)" in summary[3]
    shutil.copytree(run_dir(out), tmp_path / run_dir(out).name)
    (tmp_path / run_dir(out).name / "run.json").unlink()  # as if killed in its last epoch
    code, _, err = main(["run", *ARGS, "--out", str(tmp_path)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert re.search(r"holds an unfinished run \(\d of 3 epochs done\): pass --resume to continue it, or --rerun", err)
    code, _, err = main(["run", *ARGS, "--out", str(tmp_path), "--resume", "--rerun"], capsys)
    assert code == 2 and "pass one of them" in err


@pytest.mark.parametrize("extra,message", [
    (["--set", "lr=0.1"], "unknown key 'lr'"),
    (["--set", "learning_rate=fast"], "--set learning_rate: expected a number, got 'fast'"),
    (["--set", "precision=fp8"], "precision must be fp32, bf16, fp16 or auto"),
    (["--set", "model.dept=3"], "has no option 'dept'"),
    (["--set", "noequals"], "expects KEY=VALUE"),
    (["--model", "vit_tiniest"], "unknown model 'vit_tiniest'; did you mean vit_tiny"),
    (["--dataset", "cifar1000"], "unknown dataset 'cifar1000'"),
    # Accepted once, meaningless or crashing later: each is refused before anything is built or written.
    (["--set", "model.depth=0"], "option depth must be >= 1"),
    (["--set", "model.depth=-1"], "option depth must be >= 1"),
    (["--set", "model.depth=2.5"], "option depth must be an integer, got 2.5"),
    (["--set", "model.depth=abc"], "option depth must be an integer, got 'abc'"),
    (["--set", "model.dropout=1.5"], "option dropout must be in [0, 1)"),
    (["--set", "learning_rate=inf"], "learning_rate must be a finite number > 0"),
    (["--set", "weight_decay=-1"], "weight_decay must be a finite number >= 0"),
    (["--set", "weight_decay_scaling=step"], "weight_decay_scaling must be 'lr' or 'none'"),
    (["--set", "weight_decay_scaling=none", "--set", "weight_decay=1"], "would zero every weight each step"),
    (["--set", "beta_1=2"], "beta_1 must be in [0, 1)"),
    (["--set", "min_lr_ratio=5"], "min_lr_ratio must be in [0, 1]"),
    (["--set", "warmup_start_ratio=2"], "warmup_start_ratio must be in [0, 1]"),
    (["--image-size", "0"], "image_size must be >= 8"),
    (["--seed", "-1"], "seed must be in [0, 2**32)"),
    (["--epochs", "100000000000"], "beyond the 2**31 steps"),
    (["--set", "precision=" + "x" * 5000], "... (5002 chars)"),  # quoted, but cut
])
def test_bad_input_exits_2_and_writes_nothing(extra, message, tmp_path, capsys):
    args = ["--model", "vit_tiny", "--dataset", "digits", "--epochs", "1", *extra]
    code, _, err = main(["run", *args, "--out", str(tmp_path / "runs")], capsys)
    assert code == 2, err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err and len(err) < 400
    assert not (tmp_path / "runs").exists()


def test_missing_dataset_exits_1_before_building_anything(tmp_path, capsys):
    code, _, err = main(["run", "--model", "vit_tiny", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"),
                         "--out", str(tmp_path / "runs")], capsys)
    assert code == 1
    assert f"benchbench data download cifar10 --data-dir {tmp_path / 'data'}" in err
    assert err.count("\n") == 1 and not (tmp_path / "runs").exists()
