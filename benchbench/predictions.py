"""Per-example test predictions: what every run saves beside its run.json, and the metrics computed from them.

`predictions.npz` (NumPy, uncompressed, no pickled objects) holds one entry per test image, in the dataset's
fixed test order (the same for every model and seed, which is what lets the report pair models image by image):

    label   int32    the true class
    top5    int32    the most probable classes, best first (five, or all when there are fewer)
    p_true  float32  the probability given to the true class   -> negative log-likelihood
    p_max   float32  the highest probability (the confidence)   -> calibration error
    p_sq    float32  the sum of the squared probabilities      -> Brier score
    logits  float16  every class's logit, when there are at most LOGITS_UP_TO classes (for metrics of your own)

A 10,000-image test set takes 0.36 MB, plus 2 MB of logits at 100 classes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FILE = "predictions.npz"
LOGITS_UP_TO = 100
ECE_BINS = 15  # equal-width confidence bins, as in Guo et al. 2017 ("On Calibration of Modern Neural Networks")


def summarise(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays of a predictions file from a test set's logits (images x classes) and true classes."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int32)
    shifted = logits - logits.max(axis=1, keepdims=True)  # softmax without overflow
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    k = min(5, logits.shape[1])
    order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    arrays = {"label": labels, "top5": order.astype(np.int32),
              "p_true": probabilities[np.arange(len(labels)), labels].astype(np.float32),
              "p_max": probabilities.max(axis=1).astype(np.float32),
              "p_sq": (probabilities**2).sum(axis=1).astype(np.float32)}
    if logits.shape[1] <= LOGITS_UP_TO:
        arrays["logits"] = logits.astype(np.float16)
    return arrays


def cross_entropy(logits: np.ndarray, labels: np.ndarray, label_smoothing: float = 0.0) -> float:
    """The training loss on these examples (Keras' CategoricalCrossentropy from logits, mean over examples):
    what `model.evaluate` reports as the loss, without a second pass over the test set."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    classes = logits.shape[1]
    target = np.full_like(log_p, label_smoothing / classes)
    target[np.arange(len(labels)), np.asarray(labels)] += 1.0 - label_smoothing
    return float(-(target * log_p).sum(axis=1).mean())


def correct(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """1.0 where the most probable class is the true one."""
    return (arrays["top5"][:, 0] == arrays["label"]).astype(np.float64)


def correct_by_seed(runs: list[dict[str, np.ndarray] | None]) -> np.ndarray | None:
    """Seeds x images correctness (benchbench.stats.Scores), or None unless every seed's predictions are there
    and cover the same number of test images."""
    if not runs or any(arrays is None for arrays in runs) or len({len(arrays["label"]) for arrays in runs}) != 1:
        return None
    return np.stack([correct(arrays) for arrays in runs])


def metrics(arrays: dict[str, np.ndarray]) -> dict[str, float]:
    """Top-1 and top-5 accuracy, negative log-likelihood (nats), expected calibration error and Brier score
    (the sum over classes of the squared error of the probabilities, in [0, 2])."""
    hit = correct(arrays)
    p_true = arrays["p_true"].astype(np.float64)
    return {"top1": float(hit.mean()),
            "top5": float((arrays["top5"] == arrays["label"][:, None]).any(axis=1).mean()),
            "nll": float(-np.log(np.maximum(p_true, np.finfo(np.float32).tiny)).mean()),
            "ece": expected_calibration_error(arrays["p_max"], hit),
            "brier": float((arrays["p_sq"].astype(np.float64) - 2 * p_true + 1).mean())}


def reliability(confidence: np.ndarray, hit: np.ndarray, bins: int = ECE_BINS) -> dict[str, np.ndarray]:
    """Per equal-width confidence bin: its images' count, mean confidence and accuracy (NaN when empty)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    # Bin b holds confidences in (b/bins, (b+1)/bins]; a confidence of exactly 0 goes to the first bin.
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"count": count, "confidence": np.bincount(index, confidence, bins) / count,
                "accuracy": np.bincount(index, np.asarray(hit, dtype=np.float64), bins) / count}


def expected_calibration_error(confidence: np.ndarray, hit: np.ndarray, bins: int = ECE_BINS) -> float:
    """Sum over bins of (share of images in the bin) x |accuracy - mean confidence|."""
    table = reliability(confidence, hit, bins)
    used = table["count"] > 0
    gaps = np.abs(table["accuracy"][used] - table["confidence"][used])
    return float((table["count"][used] / table["count"].sum() * gaps).sum())


def save(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    from benchbench import io

    return io.save_arrays(path, arrays)


def load(path: str | Path) -> dict[str, np.ndarray]:
    from benchbench import io

    return io.load_named_arrays(path)
