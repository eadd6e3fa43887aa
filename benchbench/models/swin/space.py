"""Swin's search space: stochastic depth (0.2 / 0.3 / 0.5 for T / S / B in the paper's configurations)."""

from benchbench.tune.dimensions import Float, register_search_space

register_search_space("swin", {
    "model.drop_path_rate": Float(0.0, 0.5),
})
