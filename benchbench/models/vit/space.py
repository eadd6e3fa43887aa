"""ViT's search space: on top of the shared recipe knobs, the regularisers DeiT found ViTs depend on when
trained from scratch on data of ImageNet size or less (stochastic depth, dropout)."""

from benchbench.tune.dimensions import Float, register_search_space

register_search_space("vit", {
    "model.drop_path_rate": Float(0.0, 0.3),
    "model.dropout": Float(0.0, 0.2),
})
