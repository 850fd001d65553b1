"""Intervals and tests for a set's distance to a reference set: both sides resampled.

A statistic of the comparison table is a distance between a judged set (generated samples, or
real maps) and the reference maps (the test split). Both are finite draws: an interval that
resamples only the judged set treats the reference as the domain itself, and a W1-type distance,
biased upward under resampling, can then fall outside its own interval. Here every bootstrap draw
resamples *both* sides with replacement (``scipy.stats.bootstrap`` with ``paired=False`` does the
same for independent samples), and the reference draws are shared by all judged sets, so the
difference between two sets' distances in one draw is paired on the reference.

- :func:`resample_draws`: the index arrays of ``n_boot`` draws of a set of ``n`` rows;
- :func:`percentile_interval`: the percentile interval of a statistic's draws (NaN draws left out);
- :func:`permutation_pvalue`: the two-sided permutation p-value of an observed statistic against
  its null draws, with the conventions of ``scipy.stats.permutation_test`` for randomized tests
  (``+1`` in numerator and denominator; two-sided as twice the smaller one-sided p, at most 1);
- :data:`DIRECTION` and :func:`badness`: which way each statistic of the comparison is better, so
  a difference of two sets has a sign that means "closer" whatever the statistic.
"""

from __future__ import annotations

import numpy as np

#: Statistics of the comparison that are not distances to the domain: novelty, diversity and bookkeeping.
NOT_DOMAIN = ("near_copy_share", "mscore", "novelty_w1", "source_share", "clipped_share", "precision", "recall",
              "coverage")

#: How the comparison's statistics read: ``lower`` (a distance or a share of failures/copies),
#: ``zero`` (a signed difference: closer to 0 is better, judged by its absolute value), ``higher``
#: (k-NN precision and recall against the reference). Statistics not listed get no difference.
DIRECTION = {
    "power_log10_distance": "lower",
    "pdf_w1_log10": "lower",
    "power_slope_difference": "zero",
    "log10_mean_difference": "zero",
    "log10_std_difference": "zero",
    "log10_skewness_difference": "zero",
    "log10_kurtosis_difference": "zero",
    "failed_fit_share": "lower",
    "near_copy_share": "lower",
    "mscore": "lower",
    "novelty_w1": "lower",
    "precision": "higher",
    "recall": "higher",
    "coverage": "higher",
}


def direction(statistic: str) -> str | None:
    """The :data:`DIRECTION` of a statistic; morphology W1s (``<parameter>_w1``) are ``lower``."""
    if statistic in DIRECTION:
        return DIRECTION[statistic]
    return "lower" if statistic.endswith("_w1") else None


def badness(statistic: str, value):
    """How far a value is from ideal, so that lower is better for every statistic: the value of a
    distance, the absolute value of a signed difference, 1 - value of precision and recall; NaN for
    a statistic without a direction."""
    value = np.asarray(value, dtype=np.float64)
    rule = direction(statistic)
    if rule == "lower":
        return value
    if rule == "zero":
        return np.abs(value)
    if rule == "higher":
        return 1.0 - value
    return np.full_like(value, np.nan)


def resample_draws(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) row indices drawn with replacement (an empty (0, n) array for no draws)."""
    if n < 1 or n_boot < 1:
        return np.empty((0, max(n, 0)), dtype=np.int64)
    return rng.integers(0, n, (n_boot, n))


def percentile_interval(draws, level: float = 0.95) -> tuple[float, float]:
    """The (1 - level) / 2 and (1 + level) / 2 quantiles of the finite draws; NaN when there are none."""
    v = np.asarray(draws, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        return float("nan"), float("nan")
    lo, hi = np.quantile(v, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


def permutation_pvalue(observed: float, null, exact: bool = False) -> float:
    """Two-sided p-value of ``observed`` against the null draws ``null``.

    As ``scipy.stats.permutation_test``: one-sided p-values count the null draws at least as
    extreme (with a relative tolerance of 1e-14 for ties), plus one in numerator and denominator
    for randomized draws (``exact=False``), and the two-sided p-value is twice the smaller, at
    most 1. NaN when the observed value or every draw is NaN.
    """
    null = np.asarray(null, dtype=np.float64).ravel()
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or not null.size:
        return float("nan")
    gamma = abs(1e-14 * observed)
    adjustment = 0 if exact else 1
    less = (np.sum(null <= observed + gamma) + adjustment) / (null.size + adjustment)
    greater = (np.sum(null >= observed - gamma) + adjustment) / (null.size + adjustment)
    return float(min(1.0, 2.0 * min(less, greater)))


__all__ = ["DIRECTION", "badness", "direction", "percentile_interval", "permutation_pvalue", "resample_draws"]
