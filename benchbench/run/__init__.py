"""`benchbench run`: one seeded, resumable training run. The config and its validation (config.py), the
training recipe (recipe.py), checkpoints (checkpoint.py), and the run itself, prepare -> restore -> fit ->
finalise (train.py)."""
