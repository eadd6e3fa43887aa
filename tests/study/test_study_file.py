"""Study files: the shipped ones load, and every kind of mistake names the file, the key and the reason."""

from pathlib import Path

import pytest

from benchbench.study.file import StudyError, load_study

STUDIES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.toml"))

GOOD = '''
name = "t"
datasets = ["digits"]
models = ["vit_tiny", "mobilevit_xxs"]
seeds = [0, 1]
epochs = 3
[recipe]
learning_rate = 5e-4
[overrides.vit_tiny]
reason = "a test of per-model overrides"
"model.depth" = 2
batch_size = 32
[overrides.mobilevit_xxs]
"model.strides" = [2, 2, 2, 1, 1]
'''


def write(tmp_path, text):
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def test_the_shipped_studies_are_found():
    assert STUDIES  # else the parametrised test below runs no case at all


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_shipped_studies_load(path):
    study = load_study(path)
    assert study.name == path.stem and study.cells
    assert len({cell.run_name() for cell in study.cells}) == len(study.cells)


def test_cells_are_the_product_with_overrides(tmp_path):
    study = load_study(write(tmp_path, GOOD))
    assert [(c.model, c.seed) for c in study.cells] == [("vit_tiny", 0), ("vit_tiny", 1), ("mobilevit_xxs", 0),
                                                        ("mobilevit_xxs", 1)]
    vit, mvit = study.cells[0], study.cells[2]
    assert vit.epochs == mvit.epochs == 3 and vit.learning_rate == mvit.learning_rate == 5e-4
    assert vit.batch_size == 32 and mvit.batch_size == 64
    assert dict(vit.model_args) == {"depth": 2} and mvit.model_args == (("strides", (2, 2, 2, 1, 1)),)
    # Stable keys: loading again gives the same cells.
    assert [c.run_name() for c in load_study(write(tmp_path, GOOD)).cells] == [c.run_name() for c in study.cells]


@pytest.mark.parametrize("change,key,reason", [
    (("epochs = 3", "epochs = 3\nepoch = 4"), "epoch", "unknown key"),
    (('models = ["vit_tiny", "mobilevit_xxs"]', 'models = ["vit_tiny", "mobilevit_xss"]'), "models",
     "unknown model 'mobilevit_xss'; did you mean mobilevit_xs"),
    (('datasets = ["digits"]', 'datasets = ["digitz"]'), "datasets", "unknown dataset 'digitz'"),
    (("seeds = [0, 1]", 'seeds = "0,1"'), "seeds", "must be of type list"),
    (("seeds = [0, 1]", "seeds = [0, 0]"), "seeds", "duplicates"),
    (("epochs = 3", 'epochs = "3"'), "epochs", "must be of type int"),
    (("learning_rate = 5e-4", 'learning_rate = "fast"'), "recipe", "learning_rate must be of type float"),
    (("learning_rate = 5e-4", "lr = 5e-4"), "recipe", "unknown key 'lr'"),
    (("batch_size = 32", "batch_size = 0"), "overrides.vit_tiny", "batch_size must be >= 1"),
    (("[overrides.vit_tiny]", "[overrides.resnet50v2]"), "overrides.resnet50v2", "not one of this study's models"),
    (('name = "t"', ""), "name", "is required"),
    (("epochs = 3", "epochs = 3\n[tune]\nepochs = 2"), "tune.trials", "is required"),
    (("epochs = 3", "epochs = 3\n[tune]\ntrials = 5\nsampler = 'tpe'"), "tune.sampler", "unknown key"),
    (("epochs = 3", "epochs = 3\n[tune]\ntrials = 5\npruner = 'asha'"), "tune.pruner", "must be one of"),
    (("epochs = 3", "epochs = 3\n[tune]\ntrials = 5\nseed = 1"), "tune.seed", "1 is one of the reported seeds"),
    (('reason = "a test of per-model overrides"\n', ""), "overrides.vit_tiny",
     "changes batch_size for this model alone, which protocol 'recipe' holds equal"),
    (('reason = "a test of per-model overrides"', "reason = ' '"), "overrides.vit_tiny.reason", "non-empty string"),
    (("epochs = 3", 'epochs = 3\nprotocol = "tuned"'), "protocol", "'tuned' needs a [tune] table"),
    (("epochs = 3", 'epochs = 3\nprotocol = "wallclock"'), "protocol", "one of 'recipe', 'tuned', 'flops', 'seconds'"),
    (("epochs = 3", "epochs = 3\ntarget_val_top1 = 90.0"), "target_val_top1", "must be a validation top-1 in (0, 1]"),
    (("epochs = 3",
      "epochs = 3\n[tune]\ntrials = 5\n[tune.space.resnet50v2]\nlearning_rate = {low = 1e-4, high = 1e-3}"),
     "tune.space.resnet50v2", "not one of this study's models"),
    (("epochs = 3", "epochs = 3\n[tune]\ntrials = 5\n[tune.space.vit_tiny]\nlearning_rate = {low = 1e-3, high = 1e-4}"),
     "tune.space.vit_tiny", "empty range"),
    (("epochs = 3", "epochs = 3\n[tune]\ntrials = 5\n[tune.space.vit_tiny]\nlr = {low = 1e-4, high = 1e-3}"),
     "tune.space.vit_tiny", "unknown key 'lr'"),
    # Names become folders: nothing may escape --out.
    (('name = "t"', 'name = "../escape"'), "name", "must be letters, digits"),
    (('name = "t"', 'name = "a/b"'), "name", "must be letters, digits"),
    (("seeds = [0, 1]", "seeds = [0, -1]"), "seeds", "integers in [0, 2**32)"),
    # Model options are checked at load by building each distinct model once, never at cell time.
    (('"model.depth" = 2', '"model.bogus" = 1'), "overrides.vit_tiny", "vit_tiny has no option 'bogus'"),
    (('"model.depth" = 2', '"model.num_heads" = 7'), "overrides.vit_tiny", "dim 192 is not divisible by num_heads 7"),
    (('"model.depth" = 2', '"model.depth" = 7.5'), "overrides.vit_tiny", "option depth must be an integer, got 7.5"),
    (('"model.depth" = 2', '"model.depth" = 0'), "overrides.vit_tiny", "option depth must be >= 1"),
    (("epochs = 3", "epochs = 3\nimage_size = 36"), "overrides.mobilevit_xxs",
     "mobilevit_xxs: image size 36 must be divisible by 8"),
    (("learning_rate = 5e-4", "learning_rate = " + "1" * 500), "recipe", "... (500 chars)"),
])
def test_mistakes_name_file_key_and_reason(tmp_path, change, key, reason):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(StudyError) as error:
        load_study(path)
    assert str(error.value).startswith(f"{path}: {key}: ")
    assert reason in str(error.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(StudyError, match="no such study file"):
        load_study(tmp_path / "absent.toml")
    with pytest.raises(StudyError, match="not valid TOML"):
        load_study(write(tmp_path, "name = "))
    with pytest.raises(StudyError, match="is a directory, not a study file"):
        load_study(tmp_path)
    (tmp_path / "latin1.toml").write_bytes('name = "caf\u00e9"'.encode("latin-1"))
    with pytest.raises(StudyError, match="not a text file"):
        load_study(tmp_path / "latin1.toml")
    with pytest.raises(StudyError, match="cannot read it: File name too long"):
        load_study(tmp_path / ("x" * 300 + ".toml"))


def test_a_search_seed_is_derived_apart_from_the_reported_seeds(tmp_path):
    study = load_study(write(tmp_path, GOOD.replace("epochs = 3", "epochs = 3\n[tune]\ntrials = 5")))
    assert study.tune.seed == 1_000_000 and study.tune.seed not in {cell.seed for cell in study.cells}
    declared = load_study(write(tmp_path, GOOD.replace("epochs = 3", "epochs = 3\n[tune]\ntrials = 5\nseed = 7")))
    assert declared.tune.seed == 7


def test_declared_deviations_are_kept_for_the_report(tmp_path):
    study = load_study(write(tmp_path, GOOD))
    assert study.protocol == "recipe"
    assert study.deviations == {"vit_tiny": {"fields": {"batch_size": 32}, "reason": "a test of per-model overrides"}}


def test_dry_run_says_what_would_run_and_writes_nothing(tmp_path, capsys):
    from benchbench import cli

    out, reports = tmp_path / "results", tmp_path / "reports"
    assert cli.main(["study", "studies/demo.toml", "--dry-run", "--workers", "2", "--out", str(out),
                     "--report-dir", str(reports)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("study demo (studies/demo.toml): 20 cells = 1 data set x 4 models x 5 seeds")
    assert lines[1].startswith("protocol recipe: every model trains with the same recipe")
    table = {line.split()[1]: line.split() for line in lines if line.startswith("digits ")}
    assert set(table) == {"vit_tiny", "shiftvit_t_light", "mobilevit_xxs", "resnet20"}
    assert table["resnet20"][2:5] == ["5", "12", "64"]
    assert f"storage: sqlite:///{out}/demo/optuna.db (the queue, shared by the workers)" in lines
    assert f"report:  {reports}/demo/leaderboard.md and figures" in lines and "data:    digits ready" in lines
    assert lines[-1] == "nothing was run or written (--dry-run)"
    assert not out.exists() and not reports.exists()
