"""Run under another Keras backend by models/test_backends.py:
`KERAS_BACKEND=jax python tests/scripts/backend_check.py DIR NAME...`.

For each model saved by the TensorFlow side in DIR (its options in NAME_options.json), it loads the .keras
file and runs a forward pass whose outputs must equal the TensorFlow ones, then builds the same model fresh and
runs training steps. Any import of TensorFlow is refused first: model code must not need it (the house rule,
checked by behaviour).
"""

import importlib.abc
import json
import sys
from pathlib import Path


class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r} (refused by backend_check.py)")
        return None


sys.meta_path.insert(0, NoTensorFlow())

import keras  # noqa: E402
import numpy as np  # noqa: E402

import benchbench  # noqa: E402

assert keras.backend.backend() != "tensorflow", keras.backend.backend()
folder, names = Path(sys.argv[1]), sys.argv[2:]
report = {}
for name in names:
    x = np.load(folder / f"{name}_x.npy")
    expected = np.load(folder / f"{name}_y.npy")
    loaded = benchbench.load_model(folder / f"{name}.keras")
    # predict_on_batch: one compiled forward pass (an eager one costs JAX several seconds per model).
    forward = np.asarray(loaded.predict_on_batch(x))
    max_diff = float(np.abs(forward - expected).max())

    keras.utils.set_random_seed(0)
    options = json.loads((folder / f"{name}_options.json").read_text())
    model = benchbench.create_model(name, num_classes=expected.shape[1], image_size=x.shape[1], **options)
    for layer in model._flatten_layers():  # dropout and stochastic depth off: measure learning, not noise
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    model.compile(optimizer=keras.optimizers.AdamW(1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    labels = np.arange(len(x)) % expected.shape[1]
    losses = [float(model.train_on_batch(x, labels)) for _ in range(6)]
    report[name] = {"load_max_abs_diff": max_diff, "losses": losses, "forward_finite": bool(np.isfinite(forward).all()),
                    "forward_shape": list(forward.shape)}
tensorflow = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
print(json.dumps({"backend": keras.backend.backend(), "models": report, "tensorflow_modules": tensorflow}))
