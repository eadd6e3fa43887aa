"""ShiftViT's search space: stochastic depth (0.2 for T, 0.5 for B in the paper) and the shifted fraction of
channels, 4 / n_div (the paper ablates it; 1/3 is its default, n_div = 12)."""

from benchbench.tune.dimensions import Choice, Float, register_search_space

register_search_space("shiftvit", {
    "model.drop_path_rate": Float(0.0, 0.4),
    "model.n_div": Choice(8, 12, 16),
})
