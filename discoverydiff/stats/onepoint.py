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
    x = _log10_values(values) if log10 else np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("no values to take moments of")
    # scipy's estimators written out (central moments m_k: skew = m3 / m2^1.5, kurtosis =
    # m4 / m2^2 - 3): the bootstrap calls this hundreds of times and scipy's wrappers cost
    # 4 ms a call on 16k values (measured), this 0.3 ms; the tests compare the two.
    mean = float(np.mean(x))
    d = x - mean
    m2 = float(np.mean(d * d))
    m3, m4 = float(np.mean(d**3)), float(np.mean(d**4))
    skew = m3 / m2**1.5 if m2 > 0 else float("nan")
    kurt = m4 / m2**2 - 3.0 if m2 > 0 else float("nan")
    return {"mean": mean, "std": float(np.sqrt(m2)), "skewness": skew, "kurtosis": kurt}


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


class ValueGrid:
    """Per-map histograms on one fixed grid, for W1 and moments of pooled values in bounded memory.

    The statistics rule cannot pool every value of thousands of 256x256 maps (5,000 of them
    are 330 million values) to sort them, so each map is reduced, as it is read, to

    - ``counts``: its values counted on ``n_bins`` equal bins over [lo, hi] (the few-shot
      targets' range: the reference of every W1 lies inside the grid);
    - ``tails``: count and sum of its values below lo and above hi (kept exactly);
    - ``sums``: the power sums of (value - ``shift``) to the 4th (the pooled moments
      exactly, up to float64 rounding).

    A resampled set (the bootstrap) pools its maps' rows with weights. Its W1 to a reference
    without tails (:meth:`w1`) is the integral of |F_a - F_b| with both CDFs linear inside
    each bin; the tails add their exact integrals. The error is at most one bin width
    (``self.width``; every value moves by less than a bin), the tests compare it with
    ``scipy.stats.wasserstein_distance``.
    """

    def __init__(self, lo: float, hi: float, n_bins: int = 4096, shift: float = 0.0):
        if not (np.isfinite(lo) and np.isfinite(hi)) or n_bins < 1:
            raise ValueError(f"the grid needs finite bounds and at least one bin, got [{lo}, {hi}], {n_bins} bins")
        if hi <= lo:  # a constant reference: a grid of one tiny bin around it
            lo, hi = lo - 0.5e-9 * max(1.0, abs(lo)), hi + 0.5e-9 * max(1.0, abs(hi))
        self.lo, self.hi, self.n_bins, self.shift = float(lo), float(hi), int(n_bins), float(shift)
        self.width = (self.hi - self.lo) / self.n_bins

    def summarize(self, maps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(counts (N, n_bins), tails (N, 4): below count and sum, above count and sum,
        sums (N, 5): count and the power sums of value - shift) of each map's values (N, ...)."""
        values = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
        n, m = values.shape
        index = np.floor((values - self.lo) / self.width).astype(np.int64)
        index[values == self.hi] = self.n_bins - 1  # hi itself closes the last bin
        below, above = index < 0, index >= self.n_bins
        inside = ~(below | above)
        rows = np.broadcast_to(np.arange(n)[:, None] * self.n_bins, index.shape)
        counts = np.bincount((rows + index)[inside], minlength=n * self.n_bins).reshape(n, self.n_bins)
        tails = np.stack([below.sum(axis=1), np.where(below, values, 0.0).sum(axis=1),
                          above.sum(axis=1), np.where(above, values, 0.0).sum(axis=1)], axis=1).astype(np.float64)
        d = values - self.shift
        d2 = d * d
        sums = np.stack([np.full(n, float(m)), d.sum(axis=1), d2.sum(axis=1), (d2 * d).sum(axis=1),
                         (d2 * d2).sum(axis=1)], axis=1)
        return counts.astype(np.float64), tails, sums

    def w1(self, counts, tails, reference_counts) -> float:
        """W1 between pooled values (``counts`` (n_bins,), ``tails`` (4,)) and a reference on the
        grid without tails (``reference_counts``)."""
        n = counts.sum() + tails[0] + tails[2]
        n_ref = reference_counts.sum()
        if n <= 0 or n_ref <= 0:
            raise ValueError("both sets need at least one value")
        f_a = (tails[0] + np.concatenate([[0.0], np.cumsum(counts)])) / n  # CDF at the edges
        f_b = np.concatenate([[0.0], np.cumsum(reference_counts)]) / n_ref
        d = f_a - f_b
        left, right = d[:-1], d[1:]
        same = left * right >= 0
        with np.errstate(invalid="ignore", divide="ignore"):
            # |linear| over a bin: a trapezoid, or two triangles where the sign changes inside
            area = np.where(same, np.abs(left + right) / 2.0,
                            (left * left + right * right) / (2.0 * (np.abs(left) + np.abs(right))))
        inner = float(np.nansum(area)) * self.width
        below = (tails[0] * self.lo - tails[1]) / n  # the integral of F_a below lo (F_b = 0 there)
        above = (tails[3] - tails[2] * self.hi) / n  # of 1 - F_a above hi (F_b = 1 there)
        return inner + below + above

    def moments(self, sums) -> dict:
        """:func:`pdf_moments` of pooled values from their power sums (``sums`` (5,))."""
        if sums[0] <= 0:
            raise ValueError("no values to take moments of")
        mean, std, skew, kurt = moments_from_power_sums(np.asarray(sums, dtype=np.float64), self.shift)
        return {"mean": float(mean), "std": float(std), "skewness": float(skew), "kurtosis": float(kurt)}


def moments_from_power_sums(sums: np.ndarray, shift: float = 0.0) -> tuple[np.ndarray, ...]:
    """(mean, std, skewness, excess kurtosis) of pooled values from their power sums (..., 5):
    count and the sums of (value - shift) to the 1st-4th power; population moments as
    :func:`pdf_moments`, NaN skewness and kurtosis where the variance is 0."""
    n = sums[..., 0]
    mu1, mu2, mu3, mu4 = (sums[..., i] / n for i in range(1, 5))
    m2 = mu2 - mu1 * mu1
    m3 = mu3 - 3.0 * mu1 * mu2 + 2.0 * mu1**3
    m4 = mu4 - 4.0 * mu1 * mu3 + 6.0 * mu1 * mu1 * mu2 - 3.0 * mu1**4
    with np.errstate(invalid="ignore", divide="ignore"):
        positive = m2 > 0
        skew = np.where(positive, m3 / np.where(positive, m2, 1.0) ** 1.5, np.nan)
        kurt = np.where(positive, m4 / np.where(positive, m2, 1.0) ** 2 - 3.0, np.nan)
    return shift + mu1, np.sqrt(np.maximum(m2, 0.0)), skew, kurt
