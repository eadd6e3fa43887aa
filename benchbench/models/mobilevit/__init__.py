"""Mobile hybrid: MobileViT, convolutions for local and Transformers for global representations."""

from benchbench.models.mobilevit import model, space  # noqa: F401  (registers the variants and the search space)
