"""MobileViT's search space: the transformer and classifier dropouts ml-cvnets sets per variant (0.05 for
XXS, 0.1 for XS and S)."""

from benchbench.tune.dimensions import Float, register_search_space

register_search_space("mobilevit", {
    "model.dropout": Float(0.0, 0.2),
    "model.classifier_dropout": Float(0.0, 0.2),
})
