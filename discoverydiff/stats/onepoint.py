"""One-point statistics of pooled values: the log10 PDF, its moments and the W1 distance.

The conventions are those of ``scipy.stats``: population moments, Fisher kurtosis, and
the first Wasserstein distance of ``scipy.stats.wasserstein_distance``.
"""

from __future__ import annotations

import numpy as np


def _log10_values(values, what: str = "values") -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(values).all():
        raise ValueError(f"{what} contain {int((~np.isfinite(values)).sum())} NaN/inf value(s)")
    bad = int((values <= 0).sum())
    if bad:
        raise ValueError(f"{what} contain {bad} non-positive value(s) (min {values.min():.4g}); "
                         "log10 is undefined there")
    return np.log10(values)


def pdf_log10(maps, bins=50, range=None):  # noqa: A002 - numpy.histogram's name
    """One-point PDF of log10 of a field: a density-normalised histogram.

    Parameters
    ----------
    maps : array_like
        Strictly positive values of any shape (pooled), e.g. G0 maps (N, H, W) in Habing.
    bins : int or array_like
        Number of bins or the edges, in log10 of the field's unit (``numpy.histogram``).
    range : (float, float), optional
        Histogram range in log10 units; default the data's range.

    Returns
    -------
    edges : numpy.ndarray, shape (n_bins + 1,)
        Bin edges in log10 of the field's unit (dex).
    density : numpy.ndarray, shape (n_bins,)
        Probability density per dex: sum(density * diff(edges)) = 1 over values in range.
    """
    density, edges = np.histogram(_log10_values(maps, "maps"), bins=bins, range=range, density=True)
    return edges, density


def pdf_moments(values, log10: bool = True) -> dict:
    """Mean, standard deviation, skewness and excess kurtosis of (log10) values.

    Population (biased) estimators, as ``numpy.mean``, ``numpy.std`` (ddof = 0),
    ``scipy.stats.skew`` (bias=True) and ``scipy.stats.kurtosis`` (Fisher, bias=True):
    a Gaussian has skewness 0 and kurtosis 0.

    Parameters
    ----------
    values : array_like
        Pooled values of any shape.
    log10 : bool
        Take log10 first (the values must then be strictly positive); mean and std are
        then in dex.

    Returns
    -------
    dict
        ``mean``, ``std``, ``skewness``, ``kurtosis`` as floats.
    """
    from scipy import stats

    x = _log10_values(values) if log10 else np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("no values to take moments of")
    return {"mean": float(np.mean(x)), "std": float(np.std(x)),
            "skewness": float(stats.skew(x)), "kurtosis": float(stats.kurtosis(x))}


def wasserstein1(a, b) -> float:
    """First Wasserstein (earth mover's) distance between two sets of values.

    ``scipy.stats.wasserstein_distance`` (unweighted: the integral of |F_a - F_b| over the
    real line, F the empirical CDFs), in the unit of the values, after pooling (flattening)
    both sets and refusing empty or non-finite input with a message; sizes may differ.
    """
    from scipy.stats import wasserstein_distance

    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size == 0 or b.size == 0:
        raise ValueError("both sets need at least one value")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("values must be finite")
    return float(wasserstein_distance(a, b))

