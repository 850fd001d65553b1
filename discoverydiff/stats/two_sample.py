"""Is a set distributed like the reference maps? A multivariate two-sample test in a feature space.

The comparison table asks one statistic at a time; a set can match every marginal statistic and
still differ jointly. The energy distance (Szekely and Rizzo 2013, "Energy statistics: a class of
statistics based on distances", J. Stat. Plan. Inference 143, 1249) of two samples X (n points)
and Y (m points) in R^d,

    E = 2 mean_ij |x_i - y_j| - mean_ij |x_i - x_j| - mean_ij |y_i - y_j|

(V-statistics: the means include the zero diagonal terms), is zero only when the distributions
agree; in one dimension it is the square of ``scipy.stats.energy_distance``. Its p-value comes from
permuting the labels of the pooled points (:func:`energy_test`), from one matrix of pooled
distances, so each permutation costs three masked means.
"""

from __future__ import annotations

import numpy as np

#: Pooled points above which the reference is subsampled (the distance matrix is held whole).
MAX_POOLED = 4000


def _distances(points: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", points, points)
    d2 = sq[:, None] + sq[None, :] - 2.0 * points @ points.T
    return np.sqrt(np.maximum(d2, 0.0))


def _energy_from_matrix(d: np.ndarray, in_x: np.ndarray) -> float:
    in_y = ~in_x
    n, m = in_x.sum(), in_y.sum()
    cross = d[np.ix_(in_x, in_y)].sum() / (n * m)
    return float(2.0 * cross - d[np.ix_(in_x, in_x)].sum() / (n * n) - d[np.ix_(in_y, in_y)].sum() / (m * m))


def energy_distance(x, y) -> float:
    """The energy distance E of two samples (n, d) and (m, d) (or 1-D arrays), see the module docstring."""
    x, y = _as_points(x), _as_points(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"the samples have {x.shape[1]} and {y.shape[1]} features")
    mask = np.zeros(len(x) + len(y), dtype=bool)
    mask[:len(x)] = True
    return _energy_from_matrix(_distances(np.concatenate([x, y])), mask)


def _as_points(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    a = a[:, None] if a.ndim == 1 else a
    if a.ndim != 2 or len(a) < 1:
        raise ValueError(f"a sample must be (n, d) with n >= 1, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("the features contain NaN or inf")
    return a


def energy_test(x, y, n_permutations: int = 1000, seed: int = 0, max_pooled: int = MAX_POOLED) -> dict:
    """Energy distance of x to y and its permutation p-value.

    The pooled points are split at random into groups of n and m, ``n_permutations`` times; the
    p-value is that of ``scipy.stats.permutation_test`` (randomized, ``alternative='greater'``:
    a larger distance is the evidence). When n + m exceeds ``max_pooled`` the second sample (the
    reference) is subsampled without replacement to fit, and ``n_y_used`` says so.

    Returns ``statistic``, ``p_value``, ``n_x``, ``n_y``, ``n_y_used``, ``permutations``.
    """
    x, y = _as_points(x), _as_points(y)
    rng = np.random.default_rng(seed)
    n_y = len(y)
    if len(x) + len(y) > max_pooled:
        y = y[np.sort(rng.choice(len(y), max(2, max_pooled - len(x)), replace=False))]
    d = _distances(np.concatenate([x, y]))
    in_x = np.zeros(len(d), dtype=bool)
    in_x[:len(x)] = True
    observed = _energy_from_matrix(d, in_x)
    null = np.empty(int(n_permutations))
    for k in range(len(null)):
        null[k] = _energy_from_matrix(d, rng.permutation(in_x))
    gamma = abs(1e-14 * observed)
    p = float((np.sum(null >= observed - gamma) + 1) / (len(null) + 1)) if len(null) else float("nan")
    return {"statistic": observed, "p_value": p, "n_x": len(x), "n_y": n_y, "n_y_used": len(y),
            "permutations": int(n_permutations)}


__all__ = ["MAX_POOLED", "energy_distance", "energy_test"]
