"""benchbench: a benchmark suite for image classifiers (ViT, ShiftViT, MobileViT, CNNs) on Keras 3.

The public API is imported lazily (PEP 562) so that `import benchbench` and the CLI's usage errors do not pay
for importing Keras and its backend. Load saved models with `benchbench.load_model(path)`, or import
`benchbench.models` before `keras.saving.load_model`, so that our custom layers are registered.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = ["count_params", "create_model", "list_models", "load_model", "model_info", "register_model", "__version__"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("benchbench.models"), name)
    raise AttributeError(f"module 'benchbench' has no attribute {name!r}")
