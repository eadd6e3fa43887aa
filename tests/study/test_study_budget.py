"""Budget-matched studies (protocol "flops"): every model gets the same training FLOPs, its epochs derived."""

import json

import pytest

from benchbench.study.budget import epoch_tflops
from benchbench.study.file import StudyError, load_study
from support.cli import main
from support.studies import study_toml

MODELS = {"vit_tiny": {"model.depth": 1, "model.patch_size": 8}, "shiftvit_keras": {"model.depths": [1]}}


def flops_study(tmp_path, budget, extra=""):
    text = study_toml("matched", datasets=["synthetic"], models=list(MODELS), seeds=[0], batch_size=32,
                      image_size=32, overrides=MODELS, tracking="none")
    path = tmp_path / "matched.toml"
    path.write_text(f'protocol = "flops"\nbudget_tflops = {budget}\n{extra}' + text)
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
