"""`benchbench tune`: search spaces, seeded TPE, pruning through the Keras callback, shared storage, confirm."""

from __future__ import annotations

import json
import time

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from benchbench import cli
from benchbench.storage import sqlite_url
from benchbench.tune.dimensions import parse_dimension
from benchbench.tune.space import space_for
from support.cli import main, run_cli
from support.env import environment, scrubbed_env, use_env
from support.studies import write_study
from support.wandb import offline_run, records, run_record, summary_view

TINY = ["--model", "vit_tiny", "--dataset", "synthetic", "--epochs", "2", "--batch-size", "32",
        "--set", "model.depth=1", "--set", "model.patch_size=8", "--tracking", "none"]


def trials(url: str, name: str) -> list:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def test_every_family_has_a_valid_space_of_run_config_keys():
    import benchbench

    for name in benchbench.list_models():
        space = space_for(name)
        assert {"learning_rate", "weight_decay", "batch_size"} <= set(space), name
    assert "model.n_div" in space_for("shiftvit_t_light") and "model.drop_path_rate" in space_for("vit_tiny")


@pytest.mark.parametrize("key, spec, message", [
    ("learning_rate", {"low": 1e-3, "high": 1e-3}, "empty range"),
    ("learning_rate", {"low": 0.0, "high": 1e-3, "log": True}, "log range needs low > 0"),
    ("batch_size", {"choices": []}, "choices must not be empty"),
    ("learning_rate", {"low": 1e-4}, "low and high must both be numbers"),
    ("learning_rate", {"low": 1e-4, "high": 1e-3, "step": 2}, "unknown field 'step'"),
    ("momentum", {"low": 0.1, "high": 0.9}, "unknown key 'momentum'"),
    ("epochs", {"low": 1, "high": 9}, "unknown key 'epochs'"),
])
def test_bad_search_spaces_are_value_errors(key, spec, message):
    with pytest.raises(ValueError, match=message):
        space_for("vit_tiny", {key: spec})


def test_integer_ranges_stay_integers():
    assert parse_dimension("model.depth", {"low": 1, "high": 4}).integer
    assert not parse_dimension("learning_rate", {"low": 1e-4, "high": 1e-2, "log": True}).integer


@pytest.mark.parametrize("args, code, message", [
    (["--space", "learning_rate=1e-3:1e-4"], 2, "empty range"),
    (["--space", "learning_rate"], 2, "--space expects KEY=LOW:HIGH"),
    (["--space", "nonsense=1:2"], 2, "unknown key 'nonsense'"),
    (["--trials", "0"], 2, "--trials must be >= 1"),
    (["--pruner", "asha"], 2, "invalid choice: 'asha'"),
    (["--space", "batch_size=,"], 2, "--space batch_size: an empty choice"),
    (["--space", "batch_size=32,abc"], 2, "--space batch_size: 'abc' is not a valid value"),
    (["--set", "model.num_heads=7"], 2, "dim 192 is not divisible by num_heads 7"),
    (["--study-name", "../up"], 2, "--study-name must be letters, digits"),
])
def test_bad_tune_input_is_one_line_and_creates_nothing(tmp_path, capsys, args, code, message):
    argv = ["tune", *TINY, "--trials", "2", "--out", str(tmp_path / "out"), *args]
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_search_whose_every_trial_fails_stops_with_the_last_error(tmp_path, capsys):
    """Failed trials do not count toward --trials; without a bound this search would ask for trials forever."""
    argv = ["tune", *TINY, "--trials", "2", "--out", str(tmp_path / "out"), "--space", "model.num_heads=5,7"]
    started = time.monotonic()
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "3 trials in a row failed" in err and "not divisible by num_heads" in err and err.count("\n") == 1
    assert time.monotonic() - started < 60
    assert [t.state for t in trials(sqlite_url(tmp_path / "out" / "tune-vit_tiny-synthetic" / "optuna.db"),
                                    "tune-vit_tiny-synthetic")] == [TrialState.FAIL] * 3


def test_pruning_callback_stops_the_run_and_the_record_says_so(tmp_path):
    from benchbench.run.config import RunConfig
    from benchbench.run.train import execute
    from benchbench.tune.search import PruningCallback

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.1))
    trial = study.ask()  # every report is below 1.1: pruned at the first epoch
    callback = PruningCallback(trial)
    config = RunConfig(model="vit_tiny", dataset="synthetic", epochs=3, batch_size=32,
                       model_args=(("depth", 1), ("patch_size", 8)))
    record = execute(config, out_dir=str(tmp_path), tracking="none", verbose=0, callbacks=[callback],
                     evaluate_test=False)
    assert callback.pruned and record["stopped_early"] and len(record["metrics"]["history"]) == 1
    assert record["metrics"]["test_top1"] is None  # tuning never evaluates the test split
    reported = trial.storage.get_trial(trial._trial_id).intermediate_values
    assert reported == {1: record["metrics"]["history"][0]["val_top1"]}


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """A 4-trial search with a 2-configuration, 2-seed confirmation, run in this process."""
    out = tmp_path_factory.mktemp("search") / "out"
    assert cli.main(["tune", *TINY, "--trials", "4", "--out", str(out), "--confirm", "2", "--confirm-seeds", "2",
                     "--space", "batch_size=16,32"]) == 0
    return out


@pytest.mark.slow
def test_search_runs_its_trials_and_confirms_the_best(search):
    url = sqlite_url(search / "tune-vit_tiny-synthetic" / "optuna.db")
    found = trials(url, "tune-vit_tiny-synthetic")
    assert len(found) == 4 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in found)
    for trial in found:
        run_dir = search / "tune-vit_tiny-synthetic" / "runs" / trial.user_attrs["run_dir"]
        record = json.loads((run_dir / "run.json").read_text())
        assert record["metrics"]["test_top1"] is None  # the test split is never seen while tuning
        assert record["config"]["batch_size"] in (16, 32) and record["config"]["seed"] == 0
    confirmed = pd.read_csv(search / "tune-vit_tiny-synthetic" / "confirm.csv")
    assert list(confirmed["rank"]) == [1, 2] and (confirmed["seeds"] == 2).all()
    assert confirmed["confirmed_test_top1_ci95"].notna().all() and confirmed["optimism_gap"].notna().all()
    # The intervals count the test set's share too: every confirmation run saved its predictions.
    assert len(list((search / "tune-vit_tiny-synthetic-confirm" / "runs").glob("*/predictions.npz"))) == 4
    runs = pd.read_csv(search / "tune-vit_tiny-synthetic-confirm" / "runs.csv")  # ordinary runs, for leaderboards
    assert len(runs) == 4 and set(runs["seed"]) == {1, 2} and set(runs["status"]) == {"done"}
    assert runs["test_top1"].notna().all()


@pytest.mark.slow
def test_rerunning_a_finished_search_adds_no_trial(search, capsys):
    assert cli.main(["tune", *TINY, "--trials", "4", "--out", str(search), "--space", "batch_size=16,32"]) == 0
    assert "4 finished before" in capsys.readouterr().out
    assert len(trials(sqlite_url(search / "tune-vit_tiny-synthetic" / "optuna.db"), "tune-vit_tiny-synthetic")) == 4


@pytest.mark.slow
def test_same_command_twice_suggests_the_same_configs(search, tmp_path):
    assert cli.main(["tune", *TINY, "--trials", "4", "--out", str(tmp_path), "--space", "batch_size=16,32"]) == 0
    first = trials(sqlite_url(search / "tune-vit_tiny-synthetic" / "optuna.db"), "tune-vit_tiny-synthetic")
    second = trials(sqlite_url(tmp_path / "tune-vit_tiny-synthetic" / "optuna.db"), "tune-vit_tiny-synthetic")
    assert [t.params for t in first] == [t.params for t in second]
    assert [t.state for t in first] == [t.state for t in second]


@pytest.mark.slow
def test_a_stored_search_of_another_model_is_a_usage_error(search, capsys):
    argv = ["tune", "--model", "shiftvit_keras", "--dataset", "synthetic", "--trials", "1", "--epochs", "2",
            "--out", str(search), "--study-name", "tune-vit_tiny-synthetic", "--tracking", "none"]
    assert cli.main(argv) == 2
    assert "already holds a study named 'tune-vit_tiny-synthetic' with model 'vit_tiny'" in capsys.readouterr().err


@pytest.mark.slow
def test_two_workers_share_a_search_on_postgres(postgres_url, tmp_path):
    from support.postgres import PASSWORD

    result = run_cli("tune", *TINY, "--trials", "5", "--workers", "2", "--study-name", "pg-search", "--out", tmp_path,
                     env=scrubbed_env(BENCHBENCH_STORAGE=postgres_url), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert PASSWORD not in result.stdout + result.stderr
    found = trials(postgres_url, "pg-search")
    assert len(found) == 5, [(t.state, t.user_attrs.get("error"), t.system_attrs) for t in found]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in found), \
        [(t.state, t.user_attrs.get("error"), t.system_attrs) for t in found]
    assert len({t.user_attrs["worker"] for t in found}) == 2  # both workers ran trials


def test_unreachable_storage_exits_1(tmp_path, capsys, monkeypatch):
    use_env(monkeypatch, scrubbed_env(BENCHBENCH_STORAGE="postgresql://u:secret-pw@127.0.0.1:9/db"))
    code, _, err = main(["tune", *TINY, "--trials", "1", "--out", tmp_path / "out"], capsys)
    assert code == 1 and "cannot open storage postgresql://u:***@127.0.0.1:9/db" in err
    assert "secret-pw" not in err and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_study_with_a_tune_table_compares_the_tuned_configurations(tmp_path, capsys):
    study = write_study(tmp_path, "tuned", datasets=["synthetic"], models=["vit_tiny"], seeds=[0, 1], epochs=2,
                        batch_size=32, overrides={"vit_tiny": {"model.depth": 1, "model.patch_size": 8}},
                        tune={"trials": 3, "epochs": 1,
                              "space": {"vit_tiny": {"learning_rate": {"low": 1e-4, "high": 3e-3, "log": True},
                                                     "batch_size": {"choices": [16, 32]}}}},
                        tracking="none")
    argv = ["study", str(study), "--out", str(tmp_path / "out"), "--report-dir", str(tmp_path / "reports")]
    assert cli.main(argv) == 0
    url = sqlite_url(tmp_path / "out" / "tuned" / "optuna.db")
    search = optuna.load_study(study_name="tuned-tune-vit_tiny-synthetic", storage=url)
    assert len(search.trials) == 3 and all(t.user_attrs["config"]["epochs"] == 1 for t in search.trials)
    # The search trains on its own seed (the first reported one + 1,000,000), never on a reported one.
    assert {t.user_attrs["config"]["seed"] for t in search.trials} == {1_000_000}
    best = max((t for t in search.trials if t.state == TrialState.COMPLETE), key=lambda t: (t.value, -t.number))
    records = [json.loads(line) for line in (tmp_path / "out" / "tuned" / "records.jsonl").read_text().splitlines()]
    assert sorted(r["config"]["seed"] for r in records) == [0, 1]
    for record in records:  # the comparison runs the search's best configuration, for the study's epochs
        assert record["config"]["epochs"] == 2 and record["config"]["model_args"]["depth"] == 1
        assert {k: record["config"][k] for k in best.params if not k.startswith("model.")} == \
            {k: v for k, v in best.params.items() if not k.startswith("model.")}
    assert "tuned    vit_tiny synthetic: best val top-1" in capsys.readouterr().out
    header = (tmp_path / "reports" / "tuned" / "leaderboard.md").read_text()
    assert ("**Protocol**: tuned: each model searched on validation with 3 trials (1 epoch each, median pruning "
            "from the first epoch after the warm-up) on search seed 1000000, which no reported cell uses") in header
    # Run again: the searches and the cells are finished, nothing new is asked or queued.
    assert cli.main(argv) == 0
    assert len(optuna.load_study(study_name="tuned-tune-vit_tiny-synthetic", storage=url).trials) == 3
    assert "2 cells, 2 done; 0 newly queued" in capsys.readouterr().out


@pytest.mark.slow
def test_each_trial_is_a_wandb_run_in_the_search_group(tmp_path, capsys):
    argv = [a if a != "none" else "wandb" for a in TINY]
    with environment(scrubbed_env(home=tmp_path)):  # no account: offline
        code, _, err = main(["tune", *argv, "--trials", "1", "--out", tmp_path / "out"], capsys)
    assert code == 0, err[-3000:]
    (trial,) = trials(sqlite_url(tmp_path / "out" / "tune-vit_tiny-synthetic" / "optuna.db"), "tune-vit_tiny-synthetic")
    run_dir = tmp_path / "out" / "tune-vit_tiny-synthetic" / "runs" / trial.user_attrs["run_dir"]
    offline = offline_run(run_dir)
    run = run_record(offline)
    assert run["run_group"] == "tune-vit_tiny-synthetic" and run["job_type"] == "tune-trial"
    config = run["config"]["update"]
    assert config["learning_rate"] == pytest.approx(trial.params["learning_rate"])  # the trial's parameters
    summary = summary_view(offline)["summary"]
    assert summary["stopped_early"] is False and "test_top1" not in summary  # complete, and no test split
    (report,) = (tmp_path / "out" / "tune-vit_tiny-synthetic" / "wandb").glob("offline-run-*")  # the search's run
    assert (run_record(report)["job_type"], run_record(report)["run_group"]) == ("report", "tune-vit_tiny-synthetic")
    (logged,) = [r["history"]["item"] for r in records(report) if r["type"] == "history"]
    table = json.loads((report / "files" / logged["trials.path"]).read_text())
    assert len(table["data"]) == 1 and "params_learning_rate" in table["columns"] and "value" in table["columns"]


@pytest.mark.parametrize("kind", ["median", "hyperband"])
def test_no_trial_is_pruned_before_its_warm_up_ends(kind):
    """A 20-epoch recipe warming up over 15 % of its steps: epochs 1-3 are warm-up, epoch 4 the first judged."""
    from benchbench.tune.pruners import make_pruner, warmup_epochs

    warmup = warmup_epochs(0.15, 20)
    pruner = make_pruner(kind, 20, warmup)
    assert warmup == 3
    assert (pruner._n_warmup_steps if kind == "median" else pruner._min_resource) == 4
