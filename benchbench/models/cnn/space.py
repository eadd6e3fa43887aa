"""CNN baselines' search space: keras.applications fixes the architecture, so the recipe knobs only (BatchNorm
momentum is in the space of models that accept it, through a study's [tune.space] table)."""

from benchbench.tune.dimensions import register_search_space

register_search_space("cnn", {})
