"""The statistics behind every interval, rank and p-value benchbench prints (leaderboards, tune confirmations).

A model's score on a dataset is its test accuracy averaged over seeds. That mean varies for two reasons, and
both are counted:

- the seed (initialisation, data order, augmentation): the runs are independent draws, so its share of the
  variance is s^2 / n, with s the standard deviation of the per-seed accuracies;
- the test set, a finite sample of images: every seed of every model sees the same images, so this share is
  common to a model's seeds and paired between models. It is the between-image variance of c_i, the image's
  correctness averaged over the seeds, over N (for a difference: of the difference of the two models' c_i);
  between-image = the variance of the c_i over images less its seed-noise part (the mean over images of c's
  variance across seeds, over n), which the seed share counts already (a two-way random-effects split).

Intervals and tests are Student-t on the sum of the two shares, with Welch-Satterthwaite degrees of freedom
(n - 1 for each seed share, N - 1 for the image share), capped at twice the seeds' n - 1 (see _combine): in
the simulation their coverage stays within 93.5-99.1 % from seed-dominated to test-set-dominated studies
(conservative where the cap binds). A bootstrap over seeds
would under-cover with the 2-5 seeds studies can afford (its variance of a mean is (n - 1)/n of the unbiased
one, and it has no t quantile); this method needs no random draws, so a report is reproducible bit for bit.
The simulation tests (tests/test_stats.py) check coverage, the family-wise error rate and power.

Models are compared pairwise without pairing seeds (seed s of two architectures shares only the data order);
p-values are Holm-adjusted over all pairs of tested models. A model's rank is 1 + the number of models
significantly better than it, made monotone in the mean (a model never ranks above one with a higher mean).
A model with a single finished seed has no seed variance: it is shown untested, never ranked.

References: Bouthillier et al. 2021, "Accounting for Variance in Machine Learning Benchmarks" (MLSys);
Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice" (rliable: probability of
improvement); Holm 1979, "A Simple Sequentially Rejective Multiple Test Procedure"; Welch 1947.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

ALPHA = 0.05  # two-sided level of every test; 1 - ALPHA is the intervals' coverage
POWER = 0.8  # the power at which a study's smallest resolvable difference is stated


@dataclasses.dataclass(frozen=True)
class Scores:
    """One model's results on one dataset: per-seed accuracies and, when the runs saved their predictions, the
    per-seed correctness of every test image (seeds x images, the images in the dataset's fixed test order)."""

    seeds: np.ndarray
    correct: np.ndarray | None = None

    @classmethod
    def of(cls, seeds, correct=None) -> Scores:
        return cls(np.asarray(seeds, dtype=float), None if correct is None else np.asarray(correct, dtype=float))

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def mean(self) -> float:
        return float(self.seeds.mean())

    @property
    def tested(self) -> bool:
        """Two seeds or more: the seed variance can be estimated."""
        return self.n >= 2


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A mean (or difference of means) with its standard error, degrees of freedom and two-sided test."""

    value: float
    se: float
    dof: float

    @property
    def half_width(self) -> float:
        from scipy import stats

        return float(stats.t.ppf(1 - ALPHA / 2, self.dof) * self.se) if self.se > 0 else 0.0

    @property
    def p_value(self) -> float:
        """Two-sided, against a true value of 0."""
        from scipy import stats

        if self.se == 0:
            return 1.0 if self.value == 0 else 0.0
        return float(2 * stats.t.sf(abs(self.value) / self.se, self.dof))


def _combine(value: float, seeds: list[tuple[float, float]], images: list[tuple[float, float]]) -> Estimate:
    """An estimate whose variance is a sum of independent shares (variance, degrees of freedom): seed shares
    and at most one test-set share. Welch-Satterthwaite degrees of freedom, at most twice the seeds' own:
    with 2-3 seeds the seed share is estimated too roughly for Satterthwaite's formula, which then
    under-covers (86 % for 2 seeds when seeds dominate, in tests/test_stats.py's simulation)."""
    parts = seeds + images
    variance = sum(v for v, _ in parts)
    denominator = sum(v * v / d for v, d in parts if v > 0)
    dof = variance * variance / denominator if denominator > 0 else math.inf
    return Estimate(value, math.sqrt(variance), min(dof, 2 * sum(d for _, d in seeds)))


def _image_terms(correct: np.ndarray) -> tuple[np.ndarray, float]:
    """Per image, the correctness averaged over seeds; and the part of those averages' variance over images
    that is seed noise (the mean over images of the across-seed variance, over n), not the images' own."""
    n = correct.shape[0]
    within = float(correct.var(axis=0, ddof=1).mean()) / n if n >= 2 else 0.0
    return correct.mean(axis=0), within


def _image_share(per_image: np.ndarray, within: float) -> list[tuple[float, float]]:
    """The test-set share of the variance of a mean over images: the between-image variance of the per-image
    values (their variance less its seed-noise part, which the seed share already counts), over N."""
    between = max(0.0, float(per_image.var(ddof=1)) - within)
    return [(between / len(per_image), len(per_image) - 1)]


def accuracy(scores: Scores) -> Estimate | None:
    """The model's mean accuracy with both shares of its variance; None for an untested model."""
    if not scores.tested:
        return None
    seed_share = (float(scores.seeds.var(ddof=1)) / scores.n, scores.n - 1)
    images = _image_share(*_image_terms(scores.correct)) if scores.correct is not None else []
    return _combine(scores.mean, [seed_share], images)


def difference(a: Scores, b: Scores) -> Estimate | None:
    """Mean accuracy of a minus that of b: seeds independent, images paired (when both saved predictions on
    the same test images); None unless both are tested."""
    if not (a.tested and b.tested):
        return None
    seeds = [(float(a.seeds.var(ddof=1)) / a.n, a.n - 1), (float(b.seeds.var(ddof=1)) / b.n, b.n - 1)]
    images = []
    if a.correct is not None and b.correct is not None and a.correct.shape[1] == b.correct.shape[1]:
        (per_a, within_a), (per_b, within_b) = _image_terms(a.correct), _image_terms(b.correct)
        images = _image_share(per_a - per_b, within_a + within_b)
    return _combine(a.mean - b.mean, seeds, images)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control for any dependence between the tests)."""
    m = len(p_values)
    adjusted, running = [0.0] * m, 0.0
    for step, i in enumerate(sorted(range(m), key=lambda j: p_values[j])):
        running = max(running, min(1.0, (m - step) * p_values[i]))
        adjusted[i] = running
    return adjusted


def probability_of_improvement(a, b) -> float:
    """P(a seed of A scores above a seed of B), ties counting half (rliable's probability of improvement; the
    Mann-Whitney U statistic over n_A x n_B)."""
    a, b = np.asarray(a, dtype=float)[:, None], np.asarray(b, dtype=float)[None, :]
    return float(((a > b) + 0.5 * (a == b)).mean())


@dataclasses.dataclass(frozen=True)
class Ranking:
    """Per model (in the order given): rank (None when untested), and for every ordered pair (better, worse)
    of tested models the difference estimate and its Holm-adjusted p-value."""

    ranks: list[int | None]
    differences: dict[tuple[int, int], Estimate]
    adjusted: dict[tuple[int, int], float]

    def significant(self, better: int, worse: int) -> bool:
        return self.adjusted.get((better, worse), 1.0) < ALPHA


def rank(models: list[Scores]) -> Ranking:
    """Ranks by mean: 1 + the number of models significantly better (Holm over all pairs of tested models),
    then made monotone in the mean; equal ranks are ties. Untested models get None."""
    tested = sorted((i for i, s in enumerate(models) if s.tested), key=lambda i: -models[i].mean)
    pairs = [(a, b) for a, b in itertools.combinations(tested, 2)]  # a's mean >= b's
    differences = {(a, b): difference(models[a], models[b]) for a, b in pairs}
    adjusted = dict(zip(pairs, holm([differences[p].p_value for p in pairs])))
    ranks: list[int | None] = [None] * len(models)
    floor = 1
    for position, j in enumerate(tested):
        better = sum(adjusted[(i, j)] < ALPHA for i in tested[:position])
        floor = max(floor, 1 + better)  # never above a model with a higher mean
        ranks[j] = floor
    return Ranking(ranks, differences, adjusted)


# --- Power -----------------------------------------------------------------------------------------------

def resolvable_difference(seed_sd: float, image_variance: float, seeds: int, comparisons: int = 1) -> float:
    """The smallest true difference between two models, each run on `seeds` seeds, that a two-sided test at
    ALPHA / comparisons (Bonferroni: Holm's first step) detects with probability POWER, given the seed standard
    deviation and the test-set variance of a difference (Var_i(d_i) / N)."""
    from scipy import stats

    if seeds < 2:
        return math.inf
    estimate = _combine(0.0, [(2 * seed_sd**2 / seeds, 2 * (seeds - 1))], [(image_variance, math.inf)])
    if estimate.se == 0:
        return 0.0
    quantiles = stats.t.ppf(1 - ALPHA / (2 * comparisons), estimate.dof) + stats.t.ppf(POWER, estimate.dof)
    return float(quantiles * estimate.se)


def seeds_needed(delta: float, seed_sd: float, image_variance: float, comparisons: int = 1,
                 most: int = 10_000) -> int | None:
    """The fewest seeds per model at which `delta` is resolvable; None when no number of seeds suffices (the
    test set alone is too small: its share does not shrink with seeds)."""
    if resolvable_difference(seed_sd, image_variance, most, comparisons) > delta:
        return None
    low, high = 2, most
    while low < high:
        middle = (low + high) // 2
        if resolvable_difference(seed_sd, image_variance, middle, comparisons) <= delta:
            high = middle
        else:
            low = middle + 1
    return low


def t_interval(values) -> tuple[float, float | None]:
    """Mean and half-width of the two-sided (1 - ALPHA) t-interval over seeds alone (for metrics without
    per-image values, such as ECE); None for fewer than two values."""
    values = np.asarray(values, dtype=float)
    estimate = accuracy(Scores(values))
    return float(values.mean()), (estimate.half_width if estimate else None)
