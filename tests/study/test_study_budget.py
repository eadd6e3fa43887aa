"""Budget-matched studies: every model gets the same training FLOPs (protocol "flops") or the same training seconds
on this machine (protocol "seconds"), its epochs derived."""

import json

import pytest

from benchbench.run import costs
from benchbench.storage import sqlite_url
from benchbench.study.budget import epoch_tflops, steps_per_epoch, timed
from benchbench.study.file import StudyError, load_study
from benchbench.study.queue import pinned
from support.cli import main
from support.studies import study_toml

MODELS = {"vit_tiny": {"model.depth": 1, "model.patch_size": 8}, "shiftvit_keras": {"model.depths": [1]}}


def flops_study(tmp_path, budget, extra=""):
    text = study_toml("matched", datasets=["synthetic"], models=list(MODELS), seeds=[0], batch_size=32,
                      image_size=32, overrides=MODELS, tracking="none")
    path = tmp_path / "matched.toml"
    path.write_text(f'protocol = "flops"\nbudget_tflops = {budget}\n{extra}' + text)
    return path


def seconds_study(tmp_path, budget, models=MODELS):
    text = study_toml("timed", datasets=["synthetic"], models=list(models), seeds=[0], batch_size=32,
                      image_size=32, overrides=models, tracking="none")
    path = tmp_path / "timed.toml"
    path.write_text(f'protocol = "seconds"\nbudget_seconds = {budget}\n' + text)
    return path


def test_epochs_are_derived_so_every_model_spends_the_budget(tmp_path):
    cells = load_study(flops_study(tmp_path, 1.0)).cells
    per_epoch = {c.model: epoch_tflops(c.model, c.dataset, c.image_size, c.val_size, c.model_args) for c in cells}
    budget = 20 * max(per_epoch.values())  # the costlier model gets 20 epochs, the cheaper more
    study = load_study(flops_study(tmp_path, budget))
    for cell in study.cells:
        assert cell.epochs == round(budget / per_epoch[cell.model])  # the nearest whole epoch
        assert abs(cell.epochs * per_epoch[cell.model] - budget) <= per_epoch[cell.model] / 2
        assert study.budget[f"{cell.model}/synthetic"]["epochs"] == cell.epochs
    assert len({cell.epochs for cell in study.cells}) == 2


@pytest.mark.parametrize("text,key,reason", [
    ('protocol = "flops"\n', "budget_tflops", "protocol 'flops' needs budget_tflops"),
    ("budget_tflops = 1.0\n", "budget_tflops", "only it takes one"),
    ('protocol = "flops"\nbudget_tflops = 1.0\nepochs = 3\n', "epochs", "derives every model's epochs"),
    ('protocol = "flops"\nbudget_tflops = -1.0\n', "budget_tflops", "must be > 0"),
    ('protocol = "seconds"\n', "budget_seconds", "protocol 'seconds' needs budget_seconds"),
    ('budget_seconds = 1.0\n', "budget_seconds", "only it takes one"),
    ('protocol = "seconds"\nbudget_seconds = 9.0\nbudget_tflops = 1.0\n', "budget_tflops", "only it takes one"),
    ('protocol = "seconds"\nbudget_seconds = 9.0\nepochs = 3\n', "epochs", "derives every model's epochs"),
    ('protocol = "seconds"\nbudget_seconds = 0.0\n', "budget_seconds", "must be > 0"),
])
def test_budget_mistakes_are_refused(tmp_path, text, key, reason):
    path = tmp_path / "bad.toml"
    path.write_text(text + study_toml("bad", datasets=["synthetic"], models=["vit_tiny"], seeds=[0],
                                      overrides={"vit_tiny": MODELS["vit_tiny"]}, tracking="none"))
    with pytest.raises(StudyError, match=f"^{path}: {key}: .*{reason}"):
        load_study(path)


@pytest.mark.slow
def test_a_budget_matched_study_runs_end_to_end(tmp_path, capsys):
    study = flops_study(tmp_path, 0.01)
    code, _, err = main(["study", str(study), "--out", str(tmp_path / "out"), "--report-dir",
                         str(tmp_path / "reports")], capsys)
    assert code == 0, err[-3000:]
    derived = load_study(study).budget
    records = [json.loads(line) for line in (tmp_path / "out" / "matched" / "records.jsonl").read_text().splitlines()]
    assert {r["config"]["model"]: r["config"]["epochs"] for r in records} == \
        {key.split("/")[0]: d["epochs"] for key, d in derived.items()}
    assert all(len(r["metrics"]["history"]) == r["config"]["epochs"] for r in records)
    header = (tmp_path / "reports" / "matched" / "leaderboard.md").read_text()
    assert "**Protocol**: flops: the same recipe, batch size, image size and augmentation for every model, and " \
           "the same 0.01 training TFLOPs per run" in header
    assert all(f"`{key.split('/')[0]}` {d['epochs']} epochs, {d['tflops']:g} TFLOPs" in header
               for key, d in derived.items())


def test_seconds_epochs_are_derived_from_each_configurations_step_time(tmp_path):
    cells = load_study(seconds_study(tmp_path, 30.0)).cells
    step = {costs.key(c): 0.01 * (i + 1) for i, c in enumerate(cells)}  # the second model's steps take twice as long
    matched, derived = timed(cells, 30.0, step)
    for cell in matched:
        per_epoch = steps_per_epoch(cell) * step[costs.key(cell)]
        assert cell.epochs == max(1, round(30.0 / per_epoch))
        assert abs(cell.epochs * per_epoch - 30.0) <= per_epoch / 2 + 1e-9
        assert derived[f"{cell.model}/synthetic"] == {
            "epochs": cell.epochs, "seconds": round(cell.epochs * per_epoch, 1), "step_seconds": step[costs.key(cell)]}
    assert matched[0].epochs > matched[1].epochs


def test_pinned_values_are_measured_once_per_storage(tmp_path):
    url, calls = sqlite_url(tmp_path / "optuna.db"), []

    def measuring(new):  # what a process would measure: only what is not pinned yet is added
        def update(current):
            calls.append(dict(current))
            return {**new, **current}
        return update

    assert pinned(url, "s", "steps", measuring({"a": 1.0})) == {"a": 1.0}
    assert pinned(url, "s", "steps", measuring({"a": 2.0, "b": 3.0})) == {"a": 1.0, "b": 3.0}  # a stays pinned
    assert calls == [{}, {"a": 1.0}]
    assert pinned(url, "other", "steps", measuring({"a": 5.0})) == {"a": 5.0}  # per study


@pytest.mark.slow
def test_a_seconds_matched_study_runs_end_to_end_and_times_each_model_once(tmp_path, capsys):
    # One model: each costs a fresh-process probe and a run; the derivation for several is tested above.
    models = {"vit_tiny": MODELS["vit_tiny"]}
    study, out = seconds_study(tmp_path, 2.0, models), tmp_path / "out"
    args = ["study", str(study), "--out", str(out), "--report-dir", str(tmp_path / "reports")]
    code, printed, err = main(args, capsys)
    assert code == 0, err[-3000:]
    assert printed.count("training steps in a fresh process") == len(models)
    budget = json.loads((out / "timed" / "study.json").read_text())["budget"]
    records = [json.loads(line) for line in (out / "timed" / "records.jsonl").read_text().splitlines()]
    assert {r["config"]["model"]: r["config"]["epochs"] for r in records} == \
        {key.split("/")[0]: d["epochs"] for key, d in budget.items()}
    for r in records:
        steps = r["resolved"]["steps_per_epoch"]
        timed_step = budget[f"{r['config']['model']}/synthetic"]["step_seconds"]
        assert abs(r["config"]["epochs"] * steps * timed_step - 2.0) <= steps * timed_step / 2 + 1e-3
    header = (tmp_path / "reports" / "timed" / "leaderboard.md").read_text()
    assert "**Protocol**: seconds: the same recipe, batch size, image size and augmentation for every model, and " \
           "the same 2 s of training per run on this machine" in header
    # Started again without its cost files, the study still keys the same (finished) cells: the step times are
    # pinned in its storage, not measured again.
    for path in (out / "timed" / "costs").glob("*.json"):
        path.unlink()
    code, printed, err = main(args, capsys)
    assert code == 0, err[-3000:]
    assert "training steps in a fresh process" not in printed
    assert f"{len(models)} done" in printed and "; 0 newly queued" in printed


def test_a_seconds_study_refuses_several_local_workers(tmp_path, capsys):
    study = seconds_study(tmp_path, 2.0)
    code, _, err = main(["study", str(study), "--out", str(tmp_path / "out"), "--workers", "2"], capsys)
    assert code == 2
    assert err.strip().endswith("run it with one worker per machine (--workers 1)")
    assert not (tmp_path / "out").exists()
