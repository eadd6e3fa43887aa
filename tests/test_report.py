"""Leaderboards: interval and test math against scipy, ties, missing and single seeds, several data sets, the
markdown as GitHub renders it, and a report built from real (tiny) runs."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from markdown_it import MarkdownIt
from scipy import stats

from benchbench import cli, predictions
from benchbench.report import leaderboard, markdown_table, pareto_front
from support.studies import write_study

COST = {"params": 1e6, "gflops": 0.1, "train_images_per_second": 100.0, "inference_latency_ms": 5.0,
        "peak_memory_mb": 900.0, "wall_seconds": 60.0, "test_top5": 1.0, "test_nll": 0.5, "test_ece": 0.05,
        "test_brier": 0.2}


def runs(rows) -> pd.DataFrame:
    """(dataset, model, seed, status, top1) tuples -> a runs.csv-shaped frame."""
    return pd.DataFrame([{"study": "s", "dataset": d, "model": m, "family": m.split("_")[0], "seed": seed,
                          "status": status, "test_top1": top1 if status == "done" else np.nan, "epochs": 3,
                          "image_size": 32, **COST} for d, m, seed, status, top1 in rows])


def html_tables(markdown: str) -> list[list[list[str]]]:
    """The tables GitHub-flavoured markdown renders, as lists of rows of cell texts."""
    html_tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    tables, rows, cells, inside = [], [], [], False
    for token in html_tokens:
        if token.type == "table_open":
            rows = []
        elif token.type == "tr_open":
            cells = []
        elif token.type in ("th_open", "td_open"):
            inside = True
        elif token.type == "inline" and inside:
            cells.append(token.content)
            inside = False
        elif token.type == "tr_close":
            rows.append(cells)
        elif token.type == "table_close":
            tables.append(rows)
    return tables


def test_ties_missing_seeds_single_seeds_and_several_datasets():
    frame = runs([
        ("digits", "vit_a", 0, "done", 0.95), ("digits", "vit_a", 1, "done", 0.96),
        ("digits", "vit_a", 2, "done", 0.94),
        # Close to the leader with noisy differences: not significant -> tied, shares rank 1.
        ("digits", "shift_b", 0, "done", 0.96), ("digits", "shift_b", 1, "done", 0.93),
        ("digits", "shift_b", 2, "done", 0.95),
        # Clearly worse on every seed: its own rank; one seed failed and is listed, not averaged.
        ("digits", "cnn_c", 0, "done", 0.60), ("digits", "cnn_c", 1, "done", 0.62), ("digits", "cnn_c", 2, "failed", 0),
        # One seed only: no interval, no test.
        ("digits", "mobile_d", 0, "done", 0.50),
        ("cifar10", "vit_a", 0, "done", 0.70), ("cifar10", "vit_a", 1, "done", 0.72),
        ("cifar10", "cnn_c", 0, "done", 0.80), ("cifar10", "cnn_c", 1, "done", 0.81),
    ])
    board = leaderboard(frame)
    digits = board[board["dataset"] == "digits"].set_index("model")
    assert digits.loc["vit_a", "rank"] == 1 and digits.loc["vit_a", "shared"]
    assert digits.loc["shift_b", "rank"] == 1 and digits.loc["shift_b", "shared"]  # not separable: a shared rank
    welch = stats.ttest_ind([0.95, 0.96, 0.94], [0.96, 0.93, 0.95], equal_var=False).pvalue
    assert digits.loc["shift_b", "p_vs_leader"] == pytest.approx(welch)  # Holm's last step: the largest p stays
    assert digits.loc["shift_b", "p_leader_better"] == pytest.approx(5 / 9)  # 4 wins and 2 ties of 9 seed pairs
    assert digits.loc["cnn_c", "rank"] == 3 and digits.loc["cnn_c", "n"] == 2 and digits.loc["cnn_c", "seeds"] == 3
    assert digits.loc["cnn_c", "not_done"] == "seed 2 failed"
    assert digits.loc["cnn_c", "top1_mean"] == pytest.approx(0.61)  # the finished seeds only
    assert digits.loc["cnn_c", "diff_vs_leader"] == pytest.approx(0.61 - 0.95)
    assert pd.isna(digits.loc["mobile_d", "rank"]) and not digits.loc["mobile_d", "tested"]  # one seed: untested
    assert pd.isna(digits.loc["mobile_d", "top1_ci95"]) and pd.isna(digits.loc["mobile_d", "p_vs_leader"])
    cifar = board[board["dataset"] == "cifar10"].set_index("model")
    assert cifar.loc["cnn_c", "rank"] == 1 and cifar.loc["vit_a", "rank"] == 2  # ranked per data set

    table = markdown_table(board[board["dataset"] == "digits"])
    (rendered,) = html_tables(table)
    assert rendered[0][:4] == ["rank", "model", "family", "test top-1 % (mean ± 95% CI)"]
    assert [row[0] for row in rendered[1:]] == ["=1", "=1", "3", "untested"] and len({len(r) for r in rendered}) == 1
    assert rendered[1][3] == "95.00 ± 2.48 (n=3)" and rendered[4][3] == "50.00 (n=1, no interval)"
    assert rendered[1][4] == "leader" and rendered[3][4].startswith("-34.00 ± ")
    assert rendered[3][-1] == "seed 2 failed"


def test_ranks_are_monotone_in_the_mean_for_the_hand_made_study():
    """A model 0.1 point behind the leader on every seed, and one 1.0 point behind with a large spread: ranks
    follow the means (before, constant paired differences gave the first p = 0 and rank 2 below the second)."""
    frame = runs([("d", "vit_a", s, "done", v) for s, v in enumerate([0.850, 0.860, 0.855])]
                 + [("d", "vit_b", s, "done", v - 0.001) for s, v in enumerate([0.850, 0.860, 0.855])]
                 + [("d", "vit_c", s, "done", v) for s, v in enumerate([0.900, 0.780, 0.840])])
    board = leaderboard(frame)
    assert list(board["model"]) == ["vit_a", "vit_b", "vit_c"]
    assert list(board["rank"]) == sorted(board["rank"]) and board["top1_mean"].is_monotonic_decreasing


def test_predictions_pair_models_image_by_image():
    """With saved predictions, the interval counts the test set's error and the comparison pairs the images:
    two models that differ on 2 of 400 images are not called different, though every seed agrees."""
    rng = np.random.default_rng(0)
    base = (rng.random(400) < 0.85)
    saved, rows = {}, []
    for model, flip in (("vit_a", 0), ("vit_b", 2)):
        for seed in range(3):
            hit = base.copy()
            hit[:flip] = False
            hit[400 - 1 - seed] = not hit[400 - 1 - seed]  # a seed-to-seed wobble
            label = np.zeros(400, dtype=np.int32)
            top5 = np.where(hit, 0, 1)[:, None].astype(np.int32)
            saved[f"{model}-{seed}"] = {"label": label, "top5": top5}
            rows.append({**runs([("d", model, seed, "done", hit.mean())]).iloc[0].to_dict(),
                         "run_id": f"{model}-{seed}"})
    board = leaderboard(pd.DataFrame(rows), saved).set_index("model")
    assert board.loc["vit_b", "rank"] == 1  # tied: 2 images are within the test set's error
    without = leaderboard(pd.DataFrame(rows)).set_index("model")
    assert board.loc["vit_a", "top1_ci95"] > without.loc["vit_a", "top1_ci95"]  # the test-set share counts


def test_pareto_front():
    cost = np.array([10.0, 20.0, 30.0, 40.0])
    accuracy = np.array([0.5, 0.4, 0.7, 0.6])
    assert list(pareto_front(cost, accuracy)) == [0, 2]  # cheaper-is-better: params
    assert list(pareto_front(cost, accuracy, cheaper_is_lower=False)) == [3, 2]  # higher-is-better: throughput


@pytest.mark.slow
def test_report_from_real_runs(tmp_path, capsys):
    study = write_study(tmp_path, "reported", datasets=["synthetic", "digits"],
                        models=["vit_keras", "vit_tiny", "vit_small"], seeds=[0, 1], epochs=2, batch_size=32,
                        image_size=32, tracking="none",
                        # One-block ViTs: each cell costs a few seconds (what is tested is the report).
                        overrides={"vit_keras": {"model.depth": 1, "model.patch_size": 8, "model.resize_to": 32,
                                                 "model.head_units": [16]},
                                   "vit_tiny": {"model.depth": 1, "model.patch_size": 8},
                                   # Diverges in its first steps: every cell fails (nan_loss) and is reported so.
                                   "vit_small": {"model.depth": 1, "model.patch_size": 8, "learning_rate": 1e30,
                                                 "reason": "a model that fails"}})
    code = cli.main(["study", str(study), "--out", str(tmp_path / "results"),
                     "--report-dir", str(tmp_path / "reports")])
    assert code == 1  # the failing model's cells are reported as failed; the others finished and were reported
    report = tmp_path / "reports" / "reported"
    markdown = (report / "leaderboard.md").read_text()
    assert "## synthetic" in markdown and "## digits" in markdown  # one leaderboard per data set
    table, digits = html_tables(markdown)
    assert len(digits) == 4 and digits[1][0] in ("1", "=1")
    models = [row[1] for row in table[1:]]
    assert sorted(models) == ["`vit_keras`", "`vit_small`", "`vit_tiny`"]
    failed = table[1 + models.index("`vit_small`")]
    assert failed[0] == "–" and failed[-1] == "seed 0 failed, seed 1 failed"
    assert sum(row[0] in ("1", "=1") for row in table[1:]) >= 1
    assert "**Environment**" in markdown and "git " in markdown
    assert "Per model: `vit_keras` 2 epochs at 32 px" in markdown
    assert ("**Protocol**: recipe: the same recipe, epochs, batch size, image size and augmentation for every model; "
            "declared deviations: `vit_small` learning_rate 1e+30 (a model that fails)") in markdown
    assert "Holm-adjusted" in markdown and "Power: with 2 seeds per model" in markdown
    for figure in ("accuracy_vs_throughput", "accuracy_vs_params", "learning_curves", "seeds", "reliability"):
        for dataset in ("synthetic", "digits"):
            png = report / f"{figure}_{dataset}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({figure}_{dataset}.png)" in markdown
    assert (report / "runs.csv").exists() and (report / "leaderboard.csv").exists()
    # `benchbench report` on the results directory rebuilds the same table.
    assert cli.main(["report", str(tmp_path / "results" / "reported"), "--out", str(tmp_path / "again")]) == 0
    again = (tmp_path / "again" / "reported" / "leaderboard.md").read_text()
    assert html_tables(again) == html_tables(markdown)
    # Every finished run points to its per-example predictions, from which its metrics are recomputed.
    (run_dir,) = (tmp_path / "results" / "reported" / "runs").glob("vit_tiny_digits_s0_*")
    record = json.loads((run_dir / "run.json").read_text())
    metrics = predictions.metrics(predictions.load(run_dir / record["predictions"]))
    assert metrics["top1"] == pytest.approx(record["metrics"]["test_top1"], abs=1e-6)
    assert metrics["top5"] == pytest.approx(record["metrics"]["test_top5"], abs=1e-6)
    assert [record["metrics"][f"test_{k}"] for k in ("nll", "ece", "brier")] == \
        [metrics[k] for k in ("nll", "ece", "brier")]
    assert cli.main(["report", str(tmp_path / "results" / "reported"), "--seeds-needed", "0.5"]) == 0
    assert "digits: 0.5 points" in capsys.readouterr().out


def test_report_of_a_study_never_run_is_a_runtime_error(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path / "results" / "nothing")]) == 1
    assert "run the study first" in capsys.readouterr().err


def report_of(tmp_path, capsys, frame: pd.DataFrame | None = None, text: str | None = None):
    """`benchbench report` on a results folder holding this runs.csv: (exit status, leaderboard text, stderr)."""
    results = tmp_path / "results" / "bad"
    results.mkdir(parents=True)
    if frame is not None:
        frame.to_csv(results / "runs.csv", index=False)
    else:
        (results / "runs.csv").write_text(text)
    code = cli.main(["report", str(results), "--out", str(tmp_path / "reports")])
    err = capsys.readouterr().err
    board = tmp_path / "reports" / "bad" / "leaderboard.md"
    assert not list((tmp_path / "reports").glob(".tmp*"))  # nothing half-written, whatever happened
    return code, board.read_text() if board.exists() else None, err


def test_a_model_without_a_finite_result_is_never_ranked(tmp_path, capsys):
    frame = runs([("d", "vit_a", 0, "done", np.nan), ("d", "vit_a", 1, "done", np.nan),
                  ("d", "vit_b", 0, "done", 0.5), ("d", "vit_b", 1, "done", 0.6)])
    frame.loc[:1, "status"] = "done"  # done, yet without an accuracy: a damaged or hand-edited results table
    code, markdown, _ = report_of(tmp_path, capsys, frame)
    assert code == 0
    rows = html_tables(markdown)[0][1:]
    assert rows[0][:2] == ["1", "`vit_b`"] and rows[1][:2] == ["–", "`vit_a`"]
    assert rows[1][-1] == "seed 0 no result, seed 1 no result"


def test_a_study_where_nothing_finished_still_reports_what_is_there(tmp_path, capsys):
    code, markdown, _ = report_of(tmp_path, capsys, runs([("d", "vit_a", 0, "failed", None),
                                                          ("d", "vit_b", 0, "queued", None)]))
    assert code == 0
    rows = html_tables(markdown)[0][1:]
    assert [row[0] for row in rows] == ["–", "–"] and all(row[5] == "–" for row in rows)  # no rank, no leader
    assert {row[-1] for row in rows} == {"seed 0 failed", "seed 0 queued"}


def test_a_results_table_without_cells_or_columns(tmp_path, capsys):
    header = ",".join(runs([("d", "vit_a", 0, "done", 0.5)]).columns)
    code, markdown, _ = report_of(tmp_path / "header", capsys, text=header + "\n")
    assert code == 0 and "runs.csv lists no cells yet" in markdown
    code, markdown, _ = report_of(tmp_path / "no-gflops", capsys, runs([("d", "vit_a", 0, "done", 0.5)]).drop(
        columns="gflops"))
    assert code == 0 and "runs.csv has no column gflops: shown as –." in markdown
    for name, text, message in (("empty", "", "is empty"),
                                ("no-status", header.replace("status", "state") + "\n", "has no column status")):
        code, markdown, err = report_of(tmp_path / name, capsys, text=text)
        assert code == 1 and message in err and err.count("\n") == 1 and markdown is None


def test_paths_that_are_not_utf8_print_escaped(tmp_path, capsys):
    folder = tmp_path / os.fsdecode(b"caf\xe9")  # a Latin-1 name: valid on Linux, not UTF-8
    code, markdown, err = report_of(folder, capsys, runs([("d", "vit_a", 0, "done", 0.5)]))
    assert code == 0 and markdown and err == ""


def test_time_to_target_counts_the_runs_that_reached_it():
    from benchbench.report import time_to_target

    def record(model, val_top1s, step_seconds=0.5):
        history = [{"epoch": i + 1, "val_top1": v} for i, v in enumerate(val_top1s)]
        return {"config": {"model": model, "dataset": "d"}, "metrics": {"history": history},
                "resolved": {"steps_per_epoch": 10}, "train_step_seconds_median": step_seconds}

    records = [record("a", [0.5, 0.91, 0.95]), record("a", [0.5, 0.6, 0.7]), record("b", [0.9, 0.9], 0.1),
               record("b", [0.2, 0.95], 0.1), record("c", [0.95], 0.1) | {"config": {"model": "c", "dataset": "e"}}]
    text = time_to_target(records, "d", 0.9)
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| `")]
    assert [[cell.strip() for cell in row] for row in rows] == [["`a`", "1 of 2", "2", "10"],  # 2 x 10 x 0.5 s
                                                               ["`b`", "2 of 2", "1.5", "2"]]  # 1.5 x 10 x 0.1 s
    assert time_to_target(records, "d", None) == ""


def test_the_per_model_line_states_the_compute_spread():
    from benchbench.report import _protocol

    runs = pd.DataFrame({"model": ["a", "a", "b"], "epochs": [2, 2, 3], "image_size": [32, 32, 32],
                         "gflops": [0.5, 0.5, 0.05]})
    assert _protocol(runs) == ("Per model: `a` 2 epochs at 32 px; `b` 3 epochs at 32 px. Forward compute per image: "
                               "0.05 GFLOPs (`b`) to 0.5 (`a`), 10.0x.")
    assert _protocol(runs.assign(gflops=float("nan"))).endswith("`b` 3 epochs at 32 px.")
