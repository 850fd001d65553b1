"""Fidelity and diversity of a generated set against real images: k-NN manifold metrics.

- :func:`knn_manifold_metrics`: precision and recall (Kynkaanniemi et al. 2019, "Improved
  Precision and Recall Metric for Assessing Generative Models") and density and coverage
  (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models"), with
  the conventions of the authors' reference code (``prdc``): the radius of a point is the
  distance to its k-th nearest neighbour in its own set (itself excluded), and a point lies in
  a ball when its distance is strictly below the radius.
- :func:`image_summary_features`: a small, documented feature space for images in [-1, 1]
  when no learned embedding is at hand (see its docstring).

Precision is the share of generated samples inside the union of the real images' k-NN balls
(are the samples realistic?); recall the share of real images inside the generated samples'
balls (is the real variety covered?). Distances are computed in blocks, so memory is bounded
by the block size, not by the product of the set sizes.
"""

from __future__ import annotations

import numpy as np

#: Kynkaanniemi et al. use k = 3.
DEFAULT_K = 3
_BLOCK = 1024
#: Bytes of one (rows, M) float64 distance block: rows per block shrink as M grows, so a scan's
#: memory stays flat (two such arrays live at a time).
_BLOCK_BYTES = 64 * 2**20


def _rows_per_block(m: int) -> int:
    return max(1, min(_BLOCK, _BLOCK_BYTES // (8 * max(int(m), 1))))


def _pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)) in float64, clipped at 0 against rounding.

    ``|a|^2 + |b|^2 - 2 a.b`` evaluated in that order, in place: two (len(a), len(b)) arrays
    instead of five, the same numbers (doubling is exact).
    """
    sq = np.einsum("ij,ij->i", a, a)[:, None] + np.einsum("ij,ij->i", b, b)[None, :]
    cross = a @ b.T
    cross *= 2.0
    sq -= cross
    del cross
    np.maximum(sq, 0.0, out=sq)
    return np.sqrt(sq, out=sq)


def knn_radii(features, k: int = DEFAULT_K) -> np.ndarray:
    """Distance of every point to its k-th nearest neighbour in the same set (itself excluded).

    Parameters
    ----------
    features : array_like, shape (N, D), N > k
    k : int

    Returns
    -------
    numpy.ndarray
        (N,) float64 radii.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] <= k:
        raise ValueError(f"k-NN radii need an (N, D) array with N > k = {k}, got shape {x.shape}")
    radii = np.empty(x.shape[0])
    block = _rows_per_block(x.shape[0])
    for start in range(0, x.shape[0], block):
        d = _pairwise_distances(x[start:start + block], x)
        # the k+1 smallest include the point itself (distance 0)
        d.partition(k, axis=1)
        radii[start:start + block] = d[:, k]
    return radii


def knn_manifold_metrics(real, generated, k: int = DEFAULT_K) -> dict[str, float]:
    """k-NN precision, recall, density and coverage of ``generated`` against ``real``.

    Parameters
    ----------
    real, generated : array_like, shape (N, D) and (M, D)
        Features of the real images and of the generated samples; N > k and M > k.
    k : int
        Neighbour rank of the ball radii (3 in both papers).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``coverage`` in [0, 1]; ``density`` >= 0 (1 for a set
        distributed like the real one); ``k``.
    """
    r = np.asarray(real, dtype=np.float64)
    g = np.asarray(generated, dtype=np.float64)
    if r.ndim != 2 or g.ndim != 2 or r.shape[1] != g.shape[1]:
        raise ValueError(f"need (N, D) and (M, D) feature arrays, got {r.shape} and {g.shape}")
    real_radii = knn_radii(r, k)
    gen_radii = knn_radii(g, k)
    in_real_balls = np.zeros(g.shape[0], dtype=bool)  # precision
    real_ball_hits = np.zeros(g.shape[0])  # density
    real_covered = np.zeros(r.shape[0], dtype=bool)  # coverage: nearest sample inside the real ball
    real_in_gen_balls = np.zeros(r.shape[0], dtype=bool)  # recall
    block = _rows_per_block(g.shape[0])
    for start in range(0, r.shape[0], block):
        d = _pairwise_distances(r[start:start + block], g)  # (block, M)
        inside = d < real_radii[start:start + block, None]
        in_real_balls |= inside.any(axis=0)
        real_ball_hits += inside.sum(axis=0)
        real_covered[start:start + block] = d.min(axis=1) < real_radii[start:start + block]
        real_in_gen_balls[start:start + block] = (d < gen_radii[None, :]).any(axis=1)
    return {
        "precision": float(in_real_balls.mean()),
        "recall": float(real_in_gen_balls.mean()),
        "density": float(real_ball_hits.mean() / k),
        "coverage": float(real_covered.mean()),
        "k": int(k),
    }


def knn_ball_hits(real, generated, k: int = DEFAULT_K, block: int | None = None):
    """Who lies in whose k-NN ball, scanned in blocks of real rows, kept as a sparse matrix.

    Parameters
    ----------
    real, generated : array_like, shape (N, D) and (M, D)
        N > k and M > k (the radii of :func:`knn_radii`).
    k : int
    block : int, optional
        Real rows per block: the distances held at a time are (block, M); by default as many
        as fit in 64 MB (1,024 at most).

    Returns
    -------
    in_real_ball : numpy.ndarray, (M,) bool
        Generated point j lies inside some real point's ball (precision's membership).
    hits : scipy.sparse.csr_matrix, (N, M) bool
        Real point i lies inside generated point j's ball (recall's membership). Only the
        pairs that hit are stored: a ball holds about k points of a set distributed like its
        own, so memory grows as N + M + hits, where the dense (N, M) booleans grow as N x M
        (400 MB for 20,000 real against 20,000 generated).

    With :func:`recall_of` the recall of any resample of the generated rows follows without
    a new scan (the balls stay those of the whole set, as for the bootstrap intervals).
    """
    from scipy.sparse import csr_matrix

    r = np.asarray(real, dtype=np.float64)
    g = np.asarray(generated, dtype=np.float64)
    if r.ndim != 2 or g.ndim != 2 or r.shape[1] != g.shape[1]:
        raise ValueError(f"need (N, D) and (M, D) feature arrays, got {r.shape} and {g.shape}")
    real_radii, gen_radii = knn_radii(r, k), knn_radii(g, k)
    block = _rows_per_block(g.shape[0]) if block is None else max(1, int(block))
    in_real_ball = np.zeros(g.shape[0], dtype=bool)
    rows, cols = [], []
    for start in range(0, r.shape[0], block):
        d = _pairwise_distances(r[start:start + block], g)
        in_real_ball |= (d < real_radii[start:start + block, None]).any(axis=0)
        i, j = np.nonzero(d < gen_radii[None, :])
        del d
        rows.append(i + start)
        cols.append(j)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    hits = csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(r.shape[0], g.shape[0]))
    return in_real_ball, hits


def recall_of(hits, columns=None) -> float:
    """Share of real rows inside the ball of at least one of the generated rows ``columns``.

    ``hits`` is :func:`knn_ball_hits`'s matrix; ``columns`` indices of generated rows (repeats
    allowed, e.g. a bootstrap draw), all of them by default.
    """
    n, m = hits.shape
    chosen = np.zeros(m, dtype=np.int64)
    if columns is None:
        chosen[:] = 1
    else:
        chosen[np.asarray(columns, dtype=np.int64)] = 1
    return float(((hits.astype(np.int64) @ chosen) > 0).mean()) if n else float("nan")


def _radial_log_power(lum: np.ndarray, n_bins: int) -> np.ndarray:
    """log10 of the mean |FFT|^2 of mean-subtracted maps in ``n_bins`` log-spaced |k| bins."""
    n, h, w = lum.shape
    power = np.abs(np.fft.rfft2(lum - lum.mean(axis=(1, 2), keepdims=True))) ** 2 / (h * w)
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.rfftfreq(w)[None, :]
    k = np.hypot(ky, kx)
    edges = np.geomspace(1.0 / max(h, w), 0.5 * np.sqrt(2.0) + 1e-9, n_bins + 1)
    which = np.digitize(k, edges) - 1
    out = np.empty((n, n_bins))
    flat = power.reshape(n, -1)
    which = which.ravel()
    for b in range(n_bins):
        sel = which == b
        out[:, b] = flat[:, sel].mean(axis=1) if sel.any() else 0.0
    return np.log10(out + 1e-12)


def image_summary_features(images, thumbnail: int = 4, n_power_bins: int = 6) -> np.ndarray:
    """A documented stand-in feature space for images in [-1, 1], (N, C, H, W) -> (N, D).

    Per image, in this order:

    - per-channel mean and standard deviation (2 C values): colour and contrast, and what a
      saturated or flat sample gets wrong first;
    - five quantiles (5, 25, 50, 75, 95 %) of the channel-mean "luminance" (the one-point PDF);
    - the mean absolute horizontal and vertical finite difference of the luminance (edge energy);
    - log10 of the luminance power in ``n_power_bins`` logarithmic spatial-frequency bins
      (texture across scales);
    - the luminance block-averaged to ``thumbnail`` x ``thumbnail`` (coarse layout).

    With C = 3 and the defaults that is 6 + 5 + 2 + 6 + 16 = 35 features. They are not
    standardized here: :func:`standardize_features` scales every feature by the spread of a
    reference set, so that no one feature dominates Euclidean distances. The space has no
    learned semantics; a user with a trusted embedding (e.g. a TorchScript model) should
    use that instead.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {x.shape}")
    n, c, h, w = x.shape
    if h % thumbnail or w % thumbnail:
        raise ValueError(f"image sides {h}x{w} must be divisible by thumbnail={thumbnail}")
    lum = x.mean(axis=1)
    parts = [
        x.mean(axis=(2, 3)),
        x.std(axis=(2, 3)),
        np.quantile(lum.reshape(n, -1), [0.05, 0.25, 0.5, 0.75, 0.95], axis=1).T,
        np.abs(np.diff(lum, axis=2)).mean(axis=(1, 2))[:, None],
        np.abs(np.diff(lum, axis=1)).mean(axis=(1, 2))[:, None],
        _radial_log_power(lum, n_power_bins),
        lum.reshape(n, thumbnail, h // thumbnail, thumbnail, w // thumbnail).mean(axis=(2, 4)).reshape(n, -1),
    ]
    return np.concatenate(parts, axis=1)


def standardize_features(reference, *others) -> list[np.ndarray]:
    """Scale every feature to zero mean and unit spread of ``reference``; apply the same map to ``others``.

    A feature with no spread in the reference is divided by 1 instead of 0.
    """
    ref = np.asarray(reference, dtype=np.float64)
    mean = ref.mean(axis=0)
    std = ref.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [(np.asarray(a, dtype=np.float64) - mean) / std for a in (ref, *others)]


__all__ = ["DEFAULT_K", "image_summary_features", "knn_ball_hits", "knn_manifold_metrics", "knn_radii", "recall_of",
           "standardize_features"]
