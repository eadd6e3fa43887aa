"""The statistics behind every interval and test benchbench prints: leaderboards and tune confirmations.

Seeds are treated as independent draws of a model's test accuracy; the t-interval and the paired t-test
assume those draws are roughly normal (the usual assumption of seed-level comparisons).
"""

from __future__ import annotations

import math

import numpy as np

ALPHA = 0.05  # two-sided level of the tests; 1 - ALPHA is the intervals' coverage


def t_interval(values) -> tuple[float, float | None]:
    """Mean and half-width of the two-sided (1 - ALPHA) t-interval; None for fewer than two values."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, None
    return mean, float(stats.t.ppf(1 - ALPHA / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))


def paired_p_value(a, b) -> float | None:
    """Two-sided paired t-test p-value of a vs b over the same seeds; None with fewer than two pairs."""
    from scipy import stats

    differences = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(differences) < 2:
        return None
    if np.allclose(differences, differences[0]):  # no spread: scipy would divide by zero
        return 1.0 if differences[0] == 0 else 0.0
    return float(stats.ttest_rel(a, b).pvalue)
