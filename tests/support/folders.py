"""Image folders for the `folder:PATH` tests: scikit-learn's digits written as real PNG files."""

from pathlib import Path

import numpy as np
from PIL import Image

from benchbench.data import get_dataset


def digits_folder(root: Path, *, split_folders: bool = False, per_class: int | None = None) -> Path:
    """Writes digits as 8x8 grey PNGs into root/<class>/ (or root/{train,val,test}/<class>/, the built-in
    digits' splits) and returns root. `per_class` keeps only the first images of each class (fast tests)."""
    x_train, y_train, x_test, y_test = get_dataset("digits").arrays()
    if split_folders:
        cut = get_dataset("digits").split_sizes()["train"]
        parts = {"train": (x_train[:cut], y_train[:cut]), "val": (x_train[cut:], y_train[cut:]),
                 "test": (x_test, y_test)}
    else:
        parts = {"": (np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test]))}
    for split, (images, labels) in parts.items():
        written = np.zeros(10, int)
        for i, (image, label) in enumerate(zip(images, labels)):
            if per_class is not None and written[label] >= per_class:
                continue
            folder = root / split / f"digit_{label}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[..., 0]).save(folder / f"{i:04d}.png")
            written[label] += 1
    return root
