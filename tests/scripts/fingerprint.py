"""Run by models/test_models.py, twice, in fresh processes: `python tests/scripts/fingerprint.py NAME...` prints
one line per model, its name and the SHA-256 of its initial weights after seeding (needs tests/ on PYTHONPATH)."""

import hashlib
import sys

import keras
import numpy as np

# Imported before seeding, as `benchbench run` does: import-time draws must not matter.
import benchbench.models  # noqa: F401
from support.models import build

for name in sys.argv[1:]:
    keras.utils.set_random_seed(0)
    print(name, hashlib.sha256(b"".join(np.asarray(v).tobytes() for v in build(name).weights)).hexdigest())
