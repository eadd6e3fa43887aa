"""`benchbench bench`: the measurement, the MFU arithmetic, a regression floor, and bad input."""

from __future__ import annotations

import json

import pytest

from benchbench import cli
from benchbench.bench import BenchConfig, bench, pair_markdown, peak_flops, suite_markdown


@pytest.fixture(scope="module")
def record():
    return bench(BenchConfig("shiftvit_keras", image_size=32, batch_size=32, steps=6, profile=True))


def test_peak_is_a_plausible_cpu_matmul_rate():
    peak = peak_flops("fp32", sizes=(1024,), repeats=3)
    assert 1e9 < peak < 1e14  # GFLOP/s to 100 TFLOP/s


@pytest.mark.slow
def test_record_is_consistent(record):
    assert record["train_images_per_second"] == pytest.approx(32 / record["train_step_seconds"])
    assert record["mfu"] == pytest.approx(3 * record["gflops"] * 1e9 * record["train_images_per_second"]
                                          / (record["peak_gflops"] * 1e9))
    assert record["params"] > 0 and record["inference_images_per_second"] > record["train_images_per_second"]


@pytest.mark.slow
def test_mfu_regression_floor(record):
    """Measured 23.6% on this 2-core CPU (under load); a floor of 8% catches a 3x slow-down, not noise."""
    assert record["mfu"] > 0.08, record


@pytest.mark.slow
def test_markdown_names_targets_only_for_reference_configs(record):
    table = suite_markdown([record])
    assert "`shiftvit_keras`" in table and "≥ 45" not in table  # 32 px is not the 48 px tutorial configuration


def test_a_model_and_its_matched_pair_are_set_side_by_side():
    """Rows name their options (one model, two configurations), and a matched pair measured alike gets a line."""
    def record(model, options, images_per_second, gflops):
        return {"model": model, "model_args": options, "image_size": 32, "batch_size": 64, "precision": "fp32",
                "jit": False, "reference_image_size": 224, "family": model.split("_")[0], "gflops": gflops,
                "train_images_per_second": images_per_second, "train_step_seconds": 64 / images_per_second,
                "inference_images_per_second": 1.0, "latency_ms": 1.0, "peak_memory_mb": 1.0, "peak_gflops": 100.0,
                "mfu": 3 * gflops * images_per_second / 100.0}

    swin = record("swin_t", {"patch_size": 2, "window_size": 4}, 40.0, 0.72)
    shift = record("shiftvit_t_light", {"patch_size": 2}, 100.0, 0.47)
    other = record("shiftvit_t_light", {}, 500.0, 0.12)  # patches of 4: not the pair's configuration
    table = suite_markdown([swin, shift, other])
    assert "`shiftvit_t_light` (patch_size=2)" in table and "| `shiftvit_t_light` " in table
    assert pair_markdown([swin, shift, other]) == (
        "- `swin_t` (patch_size=2, window_size=4) against its matched pair `shiftvit_t_light` (patch_size=2), 32 px, "
        "batch 64, fp32: 40.0 against 100.0 train img/s (the pair 2.50x as fast), 0.720 against 0.470 GFLOPs/img, "
        "MFU 86.4 against 141.0 %.")
    assert pair_markdown([swin, other]) == ""


def test_processes_set_mfu_beside_the_copy_rate_and_rank_them():
    """Rows of more than one process list each process's MFU and memory copy rate; over every such process, the
    rank correlation of MFU (over its row's median) with the copy rate: 1 when the slower processes of every row
    met the slower memory, -1 when they met the faster."""
    from benchbench.bench.tables import processes_markdown
    from benchbench.measure import copy_bandwidth

    def row(model, runs):
        return {"model": model, "model_args": {}, "repeats": [{"mfu": m, "copy_gb_s": c} for m, c in runs]}

    together = [row("vit_keras", [(0.30, 20.0), (0.35, 22.0), (0.40, 25.0)]), row("vit_tiny", [(0.55, 21.0),
                                                                                               (0.60, 24.0)])]
    text = processes_markdown(together + [row("shiftvit_keras", [(0.5, 22.0)])])  # one process: no row
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines() if line[:1] == "|"]
    assert ["`vit_keras`", "tensorflow", "30.0 / 20.0, 35.0 / 22.0, 40.0 / 25.0"] in rows
    assert "shiftvit_keras" not in text and "over these 5 processes" in text.lower() and "rho = 1.00" in text
    against = [row("vit_keras", [(0.30, 25.0), (0.35, 22.0), (0.40, 20.0)]), row("vit_tiny", [(0.55, 24.0),
                                                                                              (0.60, 21.0)])]
    assert "rho = -1.00" in processes_markdown(against)
    assert processes_markdown([row("vit_keras", [(0.3, 20.0)])]) == ""
    assert 0.1 < copy_bandwidth(megabytes=16, repeats=3) < 10_000  # GB/s: any machine's memory


def test_bench_json_and_usage_errors(capsys):
    assert cli.main(["bench", "--model", "shiftvit_keras", "--image-size", "32", "--batch-size", "8", "--steps", "2",
                     "--set", "depths=(1, 1, 1, 1)", "--peak-gflops", "1e4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["model"] == "shiftvit_keras" and out["batch_size"] == 8 and 0 < out["mfu"] < 1
    assert out["peak_gflops"] == 1e4  # given, not measured (what is tested here is the command)
    assert cli.main(["bench"]) == 2
    assert "bench needs --model" in capsys.readouterr().err
    assert cli.main(["bench", "--model", "vitt"]) == 2
    assert "unknown model 'vitt'" in capsys.readouterr().err


@pytest.mark.slow
def test_profile_and_model_options(capsys):
    """--set reaches the model, --profile returns the step's op types with their shares of op time."""
    assert cli.main(["bench", "--model", "shiftvit_keras", "--image-size", "32", "--batch-size", "8", "--steps", "3",
                     "--set", "dropout=0.0", "--profile", "--peak-gflops", "1e4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["model_args"] == {"dropout": 0.0}
    ops = {p["op"]: p for p in out["profile"]}
    assert "MatMul" in ops and all(p["ms_per_step"] > 0 for p in out["profile"])
    assert 0.5 < sum(p["share"] for p in out["profile"]) <= 1.0 + 1e-9  # the top op types cover most of the time
    assert cli.main(["bench", "--model", "shiftvit_keras", "--set", "dropuot=0"]) == 2
    assert "no option 'dropuot'" in capsys.readouterr().err


@pytest.mark.slow
def test_another_backend_runs_in_fresh_processes_and_the_median_is_reported():
    """`--backend jax`: each repeat a fresh JAX process, its steps XLA programs, its FLOPs the ones counted on the
    TensorFlow graph (the same architecture), its first (compiling) step reported apart."""
    from benchbench.bench import bench_repeated
    from benchbench.bench.speed import counted_flops

    one_block = (("depth", 1), ("patch_size", 8))  # what is tested is the repeating, not the model or the peak
    config = BenchConfig("vit_tiny", image_size=32, batch_size=8, steps=2, model_args=one_block, peak_gflops=1e4,
                         backend="jax")
    record = bench_repeated(config, repeats=3)
    speeds = sorted(r["train_images_per_second"] for r in record["repeats"])
    assert len(speeds) == 3 and record["train_images_per_second"] == speeds[1]
    assert (record["environment"]["backend"], record["compiler"]) == ("jax", "XLA (jax.jit)")
    assert record["gflops"] * 1e9 == pytest.approx(counted_flops(config))
    assert record["first_step_seconds"] > record["train_step_seconds"] > 0


def test_the_suite_reuses_the_flops_and_peak_it_has_measured():
    """The suite counts FLOPs once per configuration: a JAX or torch row reuses TensorFlow's count of the same
    model, size, precision and options (a fresh TensorFlow process each otherwise), and only that one; and it
    measures the matmul peak once per backend and precision."""
    from benchbench.bench.suite import _known

    tf_record = {"backend": "tensorflow", "model": "vit_keras", "image_size": 32, "reference_image_size": 32,
                 "precision": "fp32", "model_args": {}, "gflops": 0.4, "peak_gflops": 220.0}
    jax = _known(BenchConfig("vit_keras", backend="jax"), [tf_record])
    assert (jax.gflops, jax.peak_gflops) == (0.4, None)
    tensorflow = _known(BenchConfig("shiftvit_keras"), [tf_record])
    assert (tensorflow.gflops, tensorflow.peak_gflops) == (None, 220.0)  # TensorFlow counts its own FLOPs
    assert _known(BenchConfig("vit_keras", precision="bf16"), [tf_record]).peak_gflops is None
    assert _known(BenchConfig("vit_keras", peak_gflops=1e4), [tf_record]).peak_gflops == 1e4  # a given peak stays
    for other in (BenchConfig("vit_keras", image_size=48, backend="jax"),
                  BenchConfig("vit_keras", precision="bf16", backend="jax"),
                  BenchConfig("vit_keras", model_args=(("depth", 2),), backend="jax"),
                  BenchConfig("shiftvit_keras", backend="jax")):
        assert _known(other, [tf_record]).gflops is None, other


@pytest.mark.parametrize(("speeds", "settle", "processes"),
                         [((11.0, 13.0, 12.0), None, 3),  # the median of three
                          ((12.0, 12.5, 9.0), 0.05, 2),  # two agree within 5 %: the slower, no third
                          ((12.0, 10.0, 13.0), 0.05, 3),  # they do not: a third, the median
                          ((12.0, 12.5, 9.0), 0.01, 3)])
def test_repeats_measure_once_what_does_not_vary_and_settle(monkeypatch, speeds, settle, processes):
    """bench_repeated: the first fresh process counts the FLOPs, measures the peak, profiles and times inference;
    the others take its FLOPs and peak; with `settle`, two processes that agree are enough."""
    from benchbench.bench import speed

    payloads = []

    def child(mode, payload, backend=None):
        payloads.append(payload)
        return {"gflops": payload["gflops"] or 0.4, "peak_gflops": payload["peak_gflops"] or 220.0,
                "train_images_per_second": speeds[len(payloads) - 1], "mfu": 0.3, "inference": payload["inference"],
                "inference_images_per_second": 50.0 if payload["inference"] else None,
                "latency_ms": 2.0 if payload["inference"] else None,
                "profile": [{"op": "MatMul"}] if payload["profile"] else None}

    monkeypatch.setattr(speed, "child", child)
    record = speed.bench_repeated(BenchConfig("vit_keras", profile=True), repeats=3, settle=settle)
    assert [p["gflops"] for p in payloads] == [None, 0.4, 0.4][:processes]
    assert [p["peak_gflops"] for p in payloads] == [None, 220.0, 220.0][:processes]
    assert [p["profile"] for p in payloads] == [p["inference"] for p in payloads] == [True, False, False][:processes]
    assert record["train_images_per_second"] == 12.0 and len(record["repeats"]) == processes
    assert (record["inference"], record["inference_images_per_second"], record["latency_ms"], record["profile"]) == (
        True, 50.0, 2.0, [{"op": "MatMul"}])


def test_pipeline_throughput_on_stand_in_images():
    from benchbench.bench import pipeline_throughput

    cifar = pipeline_throughput("cifar10", 48, 64, batches=10, examples=256)
    flowers = pipeline_throughput("tf_flowers", 64, 16, batches=10, examples=64)
    assert cifar["stand_in_size"] == [32, 32] and flowers["stand_in_size"] == [333, 500]
    assert cifar["augment"] == "pad_crop_flip" and cifar["images_per_second"] > 0 and flowers["images_per_second"] > 0


@pytest.mark.slow
def test_runner_overhead_measures_both_sides():
    from benchbench.bench import runner_overhead
    from benchbench.run.config import RunConfig

    o = runner_overhead(RunConfig("vit_tiny", "synthetic", epochs=2, batch_size=32,
                                  model_args=(("depth", 1), ("patch_size", 8))), processes=2)
    assert o["bare_fit_seconds"] > 0 and o["runner_fit_seconds"] > 0 and 0 < o["bookkeeping_seconds"] < 5
    assert len(o["bare_runs"]) == len(o["runner_runs"]) == 2  # a fresh process per fit
    runner = o["runner_fit_seconds"] + o["bookkeeping_seconds"]
    assert o["overhead"] == pytest.approx(runner / o["bare_fit_seconds"] - 1)
    # A user's bare script: no op determinism (the runner turns it on in its own process).
    assert [r["op_determinism"] for r in o["bare_runs"]] == [False, False]
    for side, fit in (("bare", o["bare_fit_seconds"]), ("runner", o["runner_fit_seconds"])):
        phases = o["phases"][side]  # both epochs trained and validated, inside the fit
        assert phases["train"] > 0 and phases["validation"] > 0 and 0 <= phases["rest"] < fit
        assert 0 < phases["first epoch"] < phases["train"]
    assert all(len(r["epochs"]) == 2 and sum(r["epochs"]) == pytest.approx(r["train"])
               for r in o["bare_runs"] + o["runner_runs"])
    after = [sorted(r["fit"] - r["epochs"][0] for r in runs) for runs in (o["bare_runs"], o["runner_runs"])]
    bare_after, runner_after = (sum(fits) / 2 for fits in after)  # the median of two
    assert o["steady_overhead"] == pytest.approx((runner_after + o["bookkeeping_seconds"]) / bare_after - 1)


@pytest.mark.slow
def test_suite_file_states_every_target_and_the_backend_table(record, tmp_path):
    from benchbench.bench import write_suite

    pipeline = {"dataset": "cifar10", "image_size": 48, "batch_size": 64, "augment": "pad_crop_flip",
                "stand_in_size": [32, 32], "images_per_second": 1000.0, "model": "shiftvit_keras"}
    overhead = {"model": "shiftvit_t_light", "dataset": "digits", "epochs": 5, "repeats": 3, "bare_fit_seconds": 10.0,
                "runner_fit_seconds": 10.1, "bookkeeping_seconds": 0.1, "setup_seconds": 1.0, "final_seconds": 1.0,
                "overhead": 0.02, "fit_overhead": 0.01, "bookkeeping_share": 0.01,
                "bare_runs": [{"fit": 10.0}, {"fit": 9.5}, {"fit": 11.2}],
                "runner_runs": [{"fit": 10.1}, {"fit": 10.4}, {"fit": 9.9}], "steady_overhead": 0.004,
                "phases": {"bare": {"first epoch": 4.0, "train": 8.0, "validation": 1.5, "rest": 0.5},
                           "runner": {"first epoch": 4.2, "train": 8.1, "validation": 1.5, "rest": 0.5}}}
    probe = {"precision": "fp32", "bf16_speedup": 0.9, "speedups": {"vit": 1.3, "shiftvit": 0.9}, "margin": 1.15,
             "step_seconds": {"vit": {"fp32": 0.13, "bf16": 0.1}, "shiftvit": {"fp32": 0.09, "bf16": 0.1}},
             "rounds": 7, "round_steps": 5}
    study = {"study": "demo", "seeds": [0, 1, 2, 3, 4], "all_seeds": 5, "cells": 20, "workers": 2,
             "wall_seconds": 100.0, "worker_seconds": 200.0, "fit_share": 0.8,
             "seconds": {"fit": 160.0, "setup": 10.0, "bookkeeping": 2.0, "final": 4.0, "cost_probe": 20.0,
                         "outside": 4.0}}
    jax = {**record, "backend": "jax", "compiler": "XLA (jax.jit)", "first_step_seconds": 9.5,
           "train_images_per_second": record["train_images_per_second"] / 2, "repeats": None}
    suite = {"records": [record, jax], "pipelines": [pipeline], "overhead": overhead, "precision": probe,
             "study": study, "amx": False, "backends_missing": ["torch"], "seconds": 1500.0,
             "sections": {"vit_keras fp32 on tensorflow": 600.0, "study `demo`": 900.0}, "settle": 0.05}
    text = write_suite(suite, tmp_path).read_text()
    for section in ("## Targets", "## Training and inference speed", "## Backends", "## Precision auto",
                    "## Where a study's time goes", "## Input pipeline", "## Runner overhead",
                    "## Where each family's training step goes", "## Where the bench's time goes"):
        assert section in text
    assert "without AMX" in text and f"{1000.0 / record['train_images_per_second']:.1f}x" in text
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines() if line[:1] == "|"]
    assert ["runner overhead over a bare `model.fit` (medians of 3 fresh processes each)",
            "+2.0 % (after the first epoch +0.4 %)", "≤ 3 %", "yes"] in rows
    assert any(row[1:3] == ["10.0, 9.5, 11.2 (10.0)", "10.1, 10.4, 9.9 (10.1)"] for row in rows)
    assert ["runner", "4.20", "8.10", "1.50", "0.50"] in rows
    assert "a third only where the first two differ by more than 5 %" in text
    assert ["study time in `fit` (`demo`, 5 seeds)", "80.0 %", "≥ 85 %", "**no**"] in rows
    assert "`demo` at its 5 seeds, 20 cells, 2 workers" in text
    assert ["study `demo`", "15.0", "60"] in rows and ["total", "25.0", "100"] in rows
    assert ["precision auto never slower than fp32", "auto = fp32: 1.00x fp32", "≥ 1.00x", "yes"] in rows
    assert ["`make bench` wall time on this machine", "25.0 min", "≤ 20 min", "**no**"] in rows
    assert ["bf16 training speed-up over fp32 on AMX (reference configurations)", "not measured: no AMX here",
            "≥ 1.8x", "–"] in rows
    assert ["cost probes", "20", "10.0"] in rows and "Choice: **fp32**" in text
    jax_row = next(row for row in rows if row[3:5] == ["jax", "XLA (jax.jit)"])
    assert jax_row[6:8] == ["0.50x", f"{record['inference_images_per_second']:.0f}"] and jax_row[9] == "9.5"
    assert "torch: not installed here (pip install -e '.[torch]')" in text
    matmul = next(row for row in rows if row[0] == "MatMul")  # the profiled record's op types, the FLOPs marked
    assert matmul[1] == "matmul/conv" and float(matmul[2]) > 0
    assert "**`shiftvit_keras`** (shiftvit, 32 px, batch 32, fp32" in text


@pytest.mark.slow
def test_the_bench_study_runs_the_first_seeds_and_reads_its_time_back(tmp_path):
    from benchbench.bench.study import study_efficiency
    from support.studies import study_toml

    path = tmp_path / "small.toml"
    path.write_text(study_toml("small", datasets=["synthetic"], models=["vit_tiny"], seeds=[3, 4], epochs=1,
                               batch_size=32, image_size=16, overrides={"vit_tiny": {"model.depth": 1}},
                               tracking="none"))
    spent = study_efficiency(path, seeds=1, workers=1)
    assert (spent["study"], spent["seeds"], spent["all_seeds"], spent["cells"]) == ("small", [3], 2, 1)
    assert 0 < spent["fit_share"] < 1 and spent["command_seconds"] >= spent["wall_seconds"]


def test_the_suite_accounts_for_its_time_part_by_part(monkeypatch):
    """run_suite's order and its own time account, every measurement replaced by one that takes a known time."""
    import time

    from benchbench.bench import study as bench_study
    from benchbench.bench import suite
    from benchbench.run import precision

    def taking(seconds: float, value):
        def measure(*args, **kwargs):
            time.sleep(seconds)
            return value(*args) if callable(value) else value
        return measure

    monkeypatch.setattr(suite, "bf16_applies", lambda: False)
    monkeypatch.setattr(suite, "installed", lambda backend: backend == "jax")
    monkeypatch.setattr(suite, "bench_repeated", taking(0.01, lambda config, repeats, settle: {
        "model": config.model, "image_size": 32, "reference_image_size": 32, "precision": config.precision,
        "model_args": {}, "gflops": 1.0, "peak_gflops": 200.0, "train_images_per_second": 1.0, "mfu": 0.5,
        "backend": config.backend, "repeats": repeats}))
    monkeypatch.setattr(suite, "pipeline_throughput", taking(0.02, {"images_per_second": 10.0}))
    monkeypatch.setattr(suite, "runner_overhead", taking(0.2, {"model": "m", "dataset": "d", "overhead": 0.01}))
    monkeypatch.setattr(precision, "probe", taking(0.01, {"precision": "fp32", "speedups": {}}))
    monkeypatch.setattr(bench_study, "study_efficiency", taking(0.3, lambda: {
        "study": "demo", "seeds": [0, 1, 2, 3, 4], "fit_share": 0.9}))
    lines = []
    result = suite.run_suite(repeats=3, progress=lines.append)
    parts = result["sections"]
    assert list(parts)[-4:] == ["input pipelines", "runner overhead", "precision probe", "study `demo`"]
    assert sum(parts.values()) == pytest.approx(result["seconds"], abs=0.05)
    assert parts["study `demo`"] >= 0.3 and 0.2 <= parts["runner overhead"] < 0.45 and parts["input pipelines"] >= 0.06
    assert [r["repeats"] for r in result["records"]] == [3] * len(suite.SUITE) + [1] * 2  # TensorFlow's, then JAX's
    assert len(lines) == len(suite.SUITE) + 2 + 3 + 3 and "5 seeds: fit 90.0%" in lines[-1]
