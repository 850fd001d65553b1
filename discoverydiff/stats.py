"""Domain statistics: power spectra, one-point PDFs, galaxy morphology, memorization, distances.

Pure functions over arrays, so that the same numbers come out of the workflow, a notebook
and the tests. Every statistic names its convention, so that results can be compared with
other codes:

- power spectra follow powerbox's ``get_power`` (Murray 2018, JOSS 3, 850) with its
  default cosmological Fourier convention (a, b) = (1, 1) and ``vol_normalised_power=True``;
  :func:`radial_power_spectrum` agrees with it bin by bin;
- power-law slopes are fitted in log10-log10 space, as TurbuStat does (Koch et al. 2019,
  AJ 158, 1);
- one-point statistics are those of ``scipy.stats`` (population moments, Fisher kurtosis,
  the first Wasserstein distance of ``scipy.stats.wasserstein_distance``);
- galaxy morphology is statmorph's (Rodriguez-Gomez et al. 2019, MNRAS 483, 4140):
  concentration, asymmetry, smoothness (CAS; Conselice 2003), Gini and M20 (Lotz et al.
  2004) and a single Sersic fit;
- memorization and reproducibility scores are those of Zhang et al. (ICML 2024, "The
  Emergence of Reproducibility and Consistency in Diffusion Models").
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from .errors import InputError

BACKENDS = ("numpy", "torch")
WINDOWS = ("hann", "tukey")
MORPHOLOGY_PARAMETERS = ("concentration", "asymmetry", "smoothness", "gini", "m20", "sersic_n")
FIELD_POWER_OF = ("log10", "overdensity", "field")
# statmorph's flag for an object it could not measure at all; used for our own failures.
_FLAG_CATASTROPHIC = 4
# Maps per FFT batch: bounds memory to about 64 MiB of complex128 at 256 x 256.
_FFT_ELEMENTS_PER_CHUNK = 1 << 22


# --------------------------------------------------------------------------------------
# Power spectra
# --------------------------------------------------------------------------------------


def _box_sides(shape: tuple[int, int], boxlength) -> tuple[float, float]:
    sides = np.broadcast_to(np.asarray(boxlength, dtype=np.float64), (2,))
    if not np.all(np.isfinite(sides)) or np.any(sides <= 0):
        raise ValueError(f"boxlength must be positive, got {boxlength!r}")
    return float(sides[0]), float(sides[1])


def _fundamental(shape: tuple[int, int], boxlength) -> tuple[float, float]:
    """(smallest non-zero |k|, Nyquist wavenumber of the coarser axis), angular units."""
    ly, lx = _box_sides(shape, boxlength)
    dk = 2.0 * math.pi / max(ly, lx)
    k_nyquist = min(math.pi * shape[0] / ly, math.pi * shape[1] / lx)
    return dk, k_nyquist


def power_spectrum_bin_edges(shape: tuple[int, int], boxlength=1.0, n_bins: int | None = None,
                             log_bins: bool = False) -> np.ndarray:
    """The default k-bin edges of :func:`radial_power_spectrum`.

    With ``dk = 2 pi / max(L_y, L_x)`` the fundamental (smallest non-zero) wavenumber and
    ``n_max = floor(k_Nyquist / dk)`` where ``k_Nyquist = min(pi N_y / L_y, pi N_x / L_x)``:

    - default (``n_bins=None``, linear): one-``dk``-wide annuli centred on ``dk, 2 dk, ...,
      n_max dk``, i.e. edges at ``(j + 1/2) dk`` for ``j = 0 ... n_max``. This is the
      "1-pixel radial bins" convention of TurbuStat, up to the Nyquist wavenumber of the
      shorter axis (powerbox's ``bins_upto_boxlen=True``); the k = 0 mode and the corner
      modes beyond Nyquist are left out.
    - ``n_bins`` linear bins: ``n_bins + 1`` edges evenly spaced over the same range,
      ``dk / 2`` to ``(n_max + 1/2) dk``.
    - ``log_bins``: ``n_bins + 1`` edges evenly spaced in log k from ``dk`` to
      ``(n_max + 1/2) dk`` (default ``n_bins``: 0.1 dex per bin); the first edge is then
      lowered to ``dk / 2`` so that the fundamental mode never sits on an edge. Narrow low-k
      bins can hold no mode at all; their power is NaN.

    Parameters
    ----------
    shape : tuple of int
        (N_y, N_x) of the maps, in pixels.
    boxlength : float or (float, float)
        Side length(s) of the map (L_y, L_x), in any length unit; a scalar applies to both
        axes, as in powerbox.
    n_bins : int, optional
    log_bins : bool

    Returns
    -------
    numpy.ndarray
        Increasing bin edges in angular wavenumber (radians per unit of ``boxlength``).
    """
    shape = _check_map_shape(shape)
    dk, k_nyquist = _fundamental(shape, boxlength)
    n_max = max(1, int(math.floor(k_nyquist / dk + 1e-9)))
    k_top = (n_max + 0.5) * dk
    if log_bins:
        if n_bins is None:
            n_bins = max(1, int(math.ceil(10.0 * math.log10(k_top / dk))))
        edges = np.geomspace(dk, k_top, int(n_bins) + 1)
        edges[0] = 0.5 * dk
        return edges
    if n_bins is None:
        return (np.arange(n_max + 1) + 0.5) * dk
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    return np.linspace(0.5 * dk, k_top, int(n_bins) + 1)


def _check_map_shape(shape) -> tuple[int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 2:
        raise ValueError(f"maps must be 2-D with at least 2 pixels per side, got shape {shape}")
    return shape


def _window_2d(window, shape: tuple[int, int]) -> np.ndarray | None:
    if window is None:
        return None
    if isinstance(window, np.ndarray):
        if window.shape != shape:
            raise ValueError(f"window array has shape {window.shape}, the maps {shape}")
        return window.astype(np.float64)
    from scipy.signal import windows

    name, alpha = (window, 0.5) if isinstance(window, str) else (window[0], float(window[1]))
    if name not in WINDOWS:
        raise ValueError(f"window must be None, one of {WINDOWS}, ('tukey', alpha) or an array; got {window!r}")
    # Periodic ("DFT-even", sym=False) windows: the form meant for spectral analysis.
    if name == "hann":
        wy, wx = windows.hann(shape[0], sym=False), windows.hann(shape[1], sym=False)
    else:
        wy, wx = windows.tukey(shape[0], alpha, sym=False), windows.tukey(shape[1], alpha, sym=False)
    return wy[:, None] * wx[None, :]


def _mode_grid(shape: tuple[int, int], boxlength):
    """|k| and Hermitian multiplicity of every mode of an rfft2 half-plane, flattened."""
    ny, nx = shape
    ly, lx = _box_sides(shape, boxlength)
    ky = 2.0 * math.pi * np.fft.fftfreq(ny, d=ly / ny)
    kx = 2.0 * math.pi * np.fft.rfftfreq(nx, d=lx / nx)
    kmag = np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    # Columns 1 .. (nx - 1) // 2 stand for themselves and their mirror (-ky, -kx), which has
    # the same |k| and |FT| for a real field; column 0 and, for even nx, the Nyquist column
    # are their own mirrors.
    multiplicity = np.full(kmag.shape, 2.0)
    multiplicity[:, 0] = 1.0
    if nx % 2 == 0:
        multiplicity[:, -1] = 1.0
    return kmag.ravel(), multiplicity.ravel()


def _prepare_fields(chunk, subtract_mean: bool, overdensity: bool, window):
    """Mean subtraction or overdensity, then the window; works on numpy arrays and torch tensors."""
    mean = chunk.mean((-2, -1), keepdims=True) if isinstance(chunk, np.ndarray) else chunk.mean((-2, -1), keepdim=True)
    if overdensity:
        if bool((mean == 0).any()):
            raise ValueError("overdensity f / <f> - 1 is undefined for a map with zero mean")
        chunk = chunk / mean - 1.0
    elif subtract_mean:
        chunk = chunk - mean
    if window is not None:
        chunk = chunk * window
    return chunk


def radial_power_spectrum(maps, boxlength=1.0, n_bins: int | None = None, bins=None, log_bins: bool = False,
                          subtract_mean: bool = True, overdensity: bool = False, window=None,
                          backend: str = "numpy", device: str = "cpu", chunk_size: int | None = None,
                          precision: str = "float64"):
    r"""Azimuthally averaged power spectrum of a batch of 2-D maps.

    Convention (powerbox ``get_power`` with its defaults (a, b) = (1, 1) and
    ``vol_normalised_power=True``; Peacock 1999, p. 496):

    - Fourier transform :math:`\tilde f(\mathbf k) = \sum_{\mathbf x} f(\mathbf x)\,
      e^{-i \mathbf k\cdot\mathbf x}\, \Delta V`, the discrete transform scaled by the pixel
      area :math:`\Delta V = L_y L_x / (N_y N_x)`;
    - power :math:`P(\mathbf k) = |\tilde f(\mathbf k)|^2 / V` with :math:`V = L_y L_x`, in
      units of [f]^2 [boxlength]^2;
    - angular wavenumbers :math:`k = 2\pi m / L` (radians per unit of ``boxlength``;
      divide by :math:`2\pi` for cycles per unit length, and with ``boxlength = N`` pixels
      :math:`k / 2\pi` is TurbuStat's cycles per pixel);
    - bin :math:`j` holds the modes with ``edges[j] <= |k| < edges[j + 1]`` (half-open, as
      ``numpy.digitize`` and powerbox), counting both members of each Hermitian pair; its
      power is the unweighted mean of :math:`P` over those modes.

    Parseval: with ``subtract_mean=True``, no window, and bins covering every non-zero
    mode, :math:`\sum_j \mathrm{counts}_j P_j / V = \sigma^2`, the population variance
    (ddof = 0) of the map; equivalently :math:`\int P\, d^2k / (2\pi)^2 = \sigma^2` with
    the mode spacing :math:`\Delta k_y \Delta k_x = (2\pi)^2 / V`.

    Parameters
    ----------
    maps : array_like, shape (N, H, W) or (H, W)
        Real fields on a regular grid.
    boxlength : float or (float, float)
        Side length(s) (L_y, L_x) of each map in the length unit of your choice (e.g. pc,
        or the number of pixels). A scalar applies to both axes, as in powerbox, so for
        non-square maps with square pixels pass the pair.
    n_bins : int, optional
        Number of bins over the default range; see :func:`power_spectrum_bin_edges`.
    bins : array_like, optional
        Explicit increasing bin edges in angular wavenumber; overrides ``n_bins`` and
        ``log_bins``.
    log_bins : bool
        Logarithmically spaced default bins.
    subtract_mean : bool
        Remove each map's mean first (powerbox does not; it only changes the k = 0 mode,
        which the default bins leave out, unless a window is applied).
    overdensity : bool
        Transform each map to f / <f> - 1 first (the cosmological overdensity).
    window : None, "hann", "tukey", ("tukey", alpha) or ndarray (H, W)
        Apodization applied after the mean subtraction, as the product of periodic 1-D
        windows along each axis (``scipy.signal.windows``, ``sym=False``; Tukey alpha 0.5
        by default). The power is divided by the mean of window^2, so the level of a
        white-noise field is preserved. Reduces the leakage from the edges of non-periodic
        maps.
    backend : {"numpy", "torch"}
        Where the FFTs run; both agree to round-off.
    precision : {"float64", "float32"}
        Of the FFT. float64 (default) agrees with powerbox to round-off (about 1e-14 per
        bin). float32 runs the FFT in single precision, 2 to 5 times faster on CPUs (and
        GPUs); the mean subtraction and window stay at the maps' precision (float64 maps
        keep float64 there) and |FT|^2 and the bin sums are float64. Its per-bin relative
        difference from float64 is about 1e-6 for k^-3 fields of 256^2
        (benchmarks/README.md) and grows with the spectrum's dynamic range: keep float64
        for spectra spanning more than about 7 decades.
    device : str
        Torch device for the torch backend (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    chunk_size : int, optional
        Maps per FFT batch (default: about 4 M pixels per batch).

    Returns
    -------
    k : numpy.ndarray, shape (n_bins,)
        Mean |k| of the modes in each bin (powerbox's ``bin_avg``), NaN for empty bins.
    power : numpy.ndarray, shape (N, n_bins), or (n_bins,) for a single (H, W) map
        Bin-averaged power, NaN for empty bins.
    counts : numpy.ndarray of int, shape (n_bins,)
        Number of Fourier modes in each bin.
    """
    maps = np.asarray(maps)
    single = maps.ndim == 2
    if single:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W) or (H, W), got shape {maps.shape}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if precision not in ("float64", "float32"):
        raise ValueError(f"precision must be 'float64' or 'float32', got {precision!r}")
    if not np.isfinite(maps).all():
        raise ValueError("maps contain NaN or inf; the power spectrum would be undefined")
    shape = _check_map_shape(maps.shape[1:])
    if bins is not None:
        if n_bins is not None:
            raise ValueError("give either bins (edges) or n_bins, not both")
        edges = np.asarray(bins, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError("bins must be at least two strictly increasing edges")
    else:
        edges = power_spectrum_bin_edges(shape, boxlength, n_bins, log_bins)
    n_out = edges.size - 1

    kmag, multiplicity = _mode_grid(shape, boxlength)
    index = np.digitize(kmag, edges) - 1
    index[(index < 0) | (index >= n_out)] = n_out  # one overflow slot, dropped at the end
    counts = np.bincount(index, weights=multiplicity, minlength=n_out + 1)[:n_out]
    k_sum = np.bincount(index, weights=multiplicity * kmag, minlength=n_out + 1)[:n_out]
    with np.errstate(invalid="ignore", divide="ignore"):
        k_mean = np.where(counts > 0, k_sum / counts, np.nan)

    ly, lx = _box_sides(shape, boxlength)
    n_pix = shape[0] * shape[1]
    window_2d = _window_2d(window, shape)
    window_norm = 1.0 if window_2d is None else float(np.mean(window_2d**2))
    scale = ly * lx / n_pix**2 / window_norm
    if chunk_size is None:
        chunk_size = max(1, _FFT_ELEMENTS_PER_CHUNK // n_pix)

    if backend == "numpy":
        sums = _binned_power_numpy(maps, index, multiplicity, n_out, subtract_mean, overdensity,
                                   window_2d, chunk_size, precision)
    else:
        sums = _binned_power_torch(maps, index, multiplicity, n_out, subtract_mean, overdensity,
                                   window_2d, chunk_size, device, precision)
    with np.errstate(invalid="ignore", divide="ignore"):
        power = np.where(counts > 0, sums * scale / counts, np.nan)
    counts = counts.astype(np.int64)
    return k_mean, (power[0] if single else power), counts


def _binned_power_numpy(maps, index, multiplicity, n_out, subtract_mean, overdensity, window, chunk_size,
                        precision="float64"):
    from scipy import sparse

    fft_dtype, work_dtype = _precisions(precision, maps.dtype == np.float64, np)
    window = None if window is None else window.astype(work_dtype)
    n_modes = index.size
    binning = sparse.csr_array((multiplicity, (np.arange(n_modes), index)), shape=(n_modes, n_out + 1))
    sums = np.empty((maps.shape[0], n_out))
    for start in range(0, maps.shape[0], chunk_size):
        chunk = np.asarray(maps[start:start + chunk_size], dtype=work_dtype)
        chunk = _prepare_fields(chunk, subtract_mean, overdensity, window).astype(fft_dtype, copy=False)
        ft = np.fft.rfft2(chunk).astype(np.complex128, copy=False)  # complex64 for float32 (NumPy >= 2)
        mode_power = (ft.real**2 + ft.imag**2).reshape(chunk.shape[0], -1)
        sums[start:start + chunk.shape[0]] = (binning.T @ mode_power.T).T[:, :n_out]
    return sums


def _precisions(precision: str, maps_are_float64: bool, lib):
    """(FFT dtype, dtype of the mean subtraction and window) of numpy or torch.

    The mean is removed at the maps' own precision (float64 maps keep it) before a float32
    FFT, so that a large mean does not cost the fluctuations their digits; |FT|^2 is always
    formed in float64, where it cannot overflow.
    """
    fft = getattr(lib, precision)
    return fft, (lib.float64 if maps_are_float64 or precision == "float64" else lib.float32)


def _binned_power_torch(maps, index, multiplicity, n_out, subtract_mean, overdensity, window, chunk_size, device,
                        precision="float64"):
    import torch

    dev = torch.device(device)
    fft_dtype, work_dtype = _precisions(precision, maps.dtype == np.float64, torch)
    index_t = torch.as_tensor(index, dtype=torch.long, device=dev)
    mult_t = torch.as_tensor(multiplicity, dtype=torch.float64, device=dev)
    window_t = None if window is None else torch.as_tensor(window, dtype=work_dtype, device=dev)
    out = []
    with torch.no_grad():
        for start in range(0, maps.shape[0], chunk_size):
            chunk = torch.as_tensor(np.ascontiguousarray(maps[start:start + chunk_size]), device=dev)
            chunk = _prepare_fields(chunk.to(work_dtype), subtract_mean, overdensity, window_t).to(fft_dtype)
            ft = torch.fft.rfft2(chunk).to(torch.complex128)
            mode_power = (ft.real**2 + ft.imag**2).reshape(chunk.shape[0], -1) * mult_t
            sums = torch.zeros(chunk.shape[0], n_out + 1, dtype=torch.float64, device=dev)
            sums.index_add_(1, index_t, mode_power)
            out.append(sums[:, :n_out].cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, n_out))


def fit_power_law(k, power, k_min: float | None = None, k_max: float | None = None):
    """Least-squares power law P = A k^slope in log10-log10 space (TurbuStat convention).

    Parameters
    ----------
    k : array_like, shape (n_bins,)
        Wavenumbers (any unit; ``amplitude`` is in the matching unit).
    power : array_like, shape (n_bins,)
        Power per bin; bins with non-finite or non-positive power or k are skipped.
    k_min, k_max : float, optional
        Inclusive fit range in the unit of ``k``.

    Returns
    -------
    slope : float
        Power-law index (dimensionless).
    amplitude : float
        A = 10^intercept, the power at k = 1 in the units of ``k`` and ``power``.
    slope_err : float
        Standard error of the slope from the least-squares fit (``scipy.stats.linregress``);
        it ignores the correlation between bins and the cosmic variance of the modes.
    """
    from scipy import stats

    k = np.asarray(k, dtype=np.float64)
    power = np.asarray(power, dtype=np.float64)
    if k.ndim != 1 or power.shape != k.shape:
        raise ValueError(f"k and power must be 1-D of one length, got {k.shape} and {power.shape}")
    keep = np.isfinite(k) & np.isfinite(power) & (k > 0) & (power > 0)
    if k_min is not None:
        keep &= k >= k_min
    if k_max is not None:
        keep &= k <= k_max
    if keep.sum() < 3:
        raise ValueError(f"only {int(keep.sum())} usable bins in k = [{k_min}, {k_max}]; a slope needs 3")
    fit = stats.linregress(np.log10(k[keep]), np.log10(power[keep]))
    return float(fit.slope), float(10.0**fit.intercept), float(fit.stderr)


# --------------------------------------------------------------------------------------
# One-point statistics
# --------------------------------------------------------------------------------------


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

    The integral of |F_a - F_b| over the real line, F the empirical CDFs; the same
    quantity and algorithm as ``scipy.stats.wasserstein_distance`` (unweighted), in the
    unit of the values. Both sets are pooled (flattened); sizes may differ.
    """
    a = np.sort(np.asarray(a, dtype=np.float64).ravel())
    b = np.sort(np.asarray(b, dtype=np.float64).ravel())
    if a.size == 0 or b.size == 0:
        raise ValueError("both sets need at least one value")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("values must be finite")
    support = np.sort(np.concatenate([a, b]))
    widths = np.diff(support)
    cdf_a = np.searchsorted(a, support[:-1], side="right") / a.size
    cdf_b = np.searchsorted(b, support[:-1], side="right") / b.size
    return float(np.sum(np.abs(cdf_a - cdf_b) * widths))


# --------------------------------------------------------------------------------------
# Galaxy morphology
# --------------------------------------------------------------------------------------


def _single_band(images, band, channel_axis: int) -> np.ndarray:
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 2:
        images = images[None]
    if images.ndim == 4:
        images = np.moveaxis(images, channel_axis, 1)
        images = images.mean(axis=1) if band is None else images[:, int(band)]
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W) or (N, C, H, W), got shape {images.shape}")
    return images


def _border_pixels(image: np.ndarray, width: int) -> np.ndarray:
    mask = np.ones(image.shape, dtype=bool)
    mask[width:-width, width:-width] = False
    return image[mask]


def _measure_one(image, border, sky_level, n_sigma, n_pixels, smooth_sigma, gain, psf, statmorph_kwargs):
    import statmorph
    from astropy.stats import sigma_clipped_stats
    from photutils.segmentation import detect_sources
    from scipy import ndimage

    row = {"sky": np.nan, "sky_sigma": np.nan, "segment_area_pix": 0}
    if not np.isfinite(image).all():
        return {**row, "error": "image contains NaN or inf"}
    _, sky, sky_sigma = sigma_clipped_stats(_border_pixels(image, border), sigma=3.0)
    if sky_level != "border":
        sky = float(sky_level)
    image = image - sky
    peak = float(np.max(np.abs(image)))
    # A noise-free (synthetic) image has no sky noise; a floor keeps threshold and weights finite.
    sigma = max(float(sky_sigma), 1e-6 * peak, np.finfo(np.float64).tiny)
    row.update(sky=float(sky), sky_sigma=float(sky_sigma))
    detection = ndimage.gaussian_filter(image, smooth_sigma) if smooth_sigma else image
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NoDetectionsWarning: an empty image is recorded below
        segments = detect_sources(detection, n_sigma * sigma, n_pixels)
    if segments is None:
        return {**row, "error": f"no source above {n_sigma} sigma of the sky"}
    cy, cx = image.shape[0] // 2, image.shape[1] // 2
    label = int(segments.data[cy, cx])
    if label == 0:
        return {**row, "error": "no source at the image centre"}
    segmap = (segments.data == label).astype(np.int32)
    row["segment_area_pix"] = int(segmap.sum())
    kwargs = dict(statmorph_kwargs or {})
    if gain is not None:
        kwargs["gain"] = gain
    else:
        kwargs["weightmap"] = np.full(image.shape, sigma)
    if psf is not None:
        kwargs["psf"] = psf
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # statmorph warns per failed sub-measurement; flags record it
            morph = statmorph.source_morphology(image, segmap, **kwargs)[0]
    except Exception as exc:  # statmorph raises many types on odd inputs; record, do not crash
        return {**row, "error": f"statmorph failed: {type(exc).__name__}: {exc}"}
    values = {name: float(getattr(morph, name)) for name in MORPHOLOGY_PARAMETERS}
    row.update(values, flag=int(morph.flag), flag_sersic=int(morph.flag_sersic),
               sersic_rhalf_pix=float(morph.sersic_rhalf), rpetro_circ_pix=float(morph.rpetro_circ))
    bad = [name for name, value in values.items() if not np.isfinite(value)]
    row["error"] = f"NaN {', '.join(bad)}" if bad else ""
    return row


def galaxy_morphology(images, names=None, band: int | None = None, channel_axis: int = 1,
                      border: int | None = None, sky="border", n_sigma: float = 2.0, n_pixels: int = 5,
                      smooth_sigma: float = 1.0, gain: float | None = None, psf=None,
                      statmorph_kwargs: dict | None = None):
    """Non-parametric morphology and a Sersic fit per galaxy image, with statmorph.

    For each image: one band is taken (``band``, or the mean of the channels); the sky,
    the sigma-clipped (3 sigma) median of a border of ``border`` pixels, is subtracted
    or ``sky`` when it is a number; sources are detected with ``photutils.segmentation.detect_sources`` on the image
    smoothed by a Gaussian of ``smooth_sigma`` pixels, above ``n_sigma`` times the
    sigma-clipped standard deviation of the border, with at least ``n_pixels`` connected
    pixels; the segment holding the centre pixel is measured by
    ``statmorph.source_morphology`` (weight map: the sky sigma, unless ``gain`` is given).

    A failure (no source, no source at the centre, a statmorph exception, a NaN
    parameter) is recorded in the row (``error`` non-empty, ``failed`` True, ``flag`` 4)
    instead of raised. Run time is about 0.3-1 s per 32-64 px image (the Sersic fit).

    Parameters
    ----------
    images : array_like, shape (N, H, W) or (N, C, H, W)
        Physical fluxes (nanomaggies) or 8-bit-scale RGB values; any linear flux scale.
    names : sequence of str, optional
        One name per image, copied to the ``name`` column.
    band : int, optional
        Channel to measure; default the mean of all channels (for gri/RGB colour images).
    channel_axis : int
        Axis holding the channels of a 4-D input (1 for (N, C, H, W), -1 for (N, H, W, C)).
    border : int, optional
        Width in pixels of the sky border; default max(2, min(H, W) // 8).
    sky : "border" or float
        The sky level to subtract: estimated from the border (default), or known (e.g. 0
        for a synthetic, sky-free image). On a small stamp the wings of a high-n profile
        reach the border, so the border estimate is biased high and the fitted n low.
    n_sigma, n_pixels, smooth_sigma : float, int, float
        Detection threshold, minimum segment size and detection smoothing (pixels).
    gain : float, optional
        Electrons per data unit, for statmorph's Poisson weight map.
    psf : ndarray, optional
        PSF image for statmorph's convolved Sersic fit.
    statmorph_kwargs : dict, optional
        Further keywords for ``statmorph.source_morphology``.

    Returns
    -------
    pandas.DataFrame
        One row per image: ``name``, ``concentration`` (C = 5 log10(r80 / r20)),
        ``asymmetry``, ``smoothness``, ``gini``, ``m20``, ``sersic_n`` (dimensionless),
        ``sersic_rhalf_pix``, ``rpetro_circ_pix`` (pixels), ``flag`` (statmorph: 0 good,
        1 suspect, 2 bad, 4 catastrophic), ``flag_sersic``, ``sky`` and ``sky_sigma`` (input
        units), ``segment_area_pix``, ``error`` ("" when measured), ``failed``.
    """
    import pandas as pd

    images = _single_band(images, band, channel_axis)
    n, h, w = images.shape
    if names is None:
        names = [str(i) for i in range(n)]
    if len(names) != n:
        raise ValueError(f"{len(names)} names for {n} images")
    border = max(2, min(h, w) // 8) if border is None else int(border)
    rows = []
    for name, image in zip(names, images):
        row = {"name": str(name), **dict.fromkeys(MORPHOLOGY_PARAMETERS, np.nan),
               "sersic_rhalf_pix": np.nan, "rpetro_circ_pix": np.nan,
               "flag": _FLAG_CATASTROPHIC, "flag_sersic": _FLAG_CATASTROPHIC}
        row.update(_measure_one(image, border, sky, n_sigma, n_pixels, smooth_sigma, gain, psf, statmorph_kwargs))
        rows.append(row)
    columns = ["name", *MORPHOLOGY_PARAMETERS, "sersic_rhalf_pix", "rpetro_circ_pix", "flag", "flag_sersic",
               "sky", "sky_sigma", "segment_area_pix", "error"]
    table = pd.DataFrame(rows, columns=columns)
    table["failed"] = table["error"] != ""
    return table


# --------------------------------------------------------------------------------------
# Memorization and reproducibility
# --------------------------------------------------------------------------------------


def _features(images, features) -> np.ndarray:
    if features is None:
        x = np.asarray(images, dtype=np.float64)
        return x.reshape(x.shape[0], -1)
    out = np.asarray(features(images), dtype=np.float64)
    return out.reshape(out.shape[0], -1)


def nearest_neighbour_ratios(samples, references, features: Callable | None = None, chunk_size: int = 512):
    """Nearest and second-nearest reference of every sample, and the ratio of distances.

    Euclidean distances in feature space: |s|^2 + |r|^2 - 2 s.r evaluated in float64 on
    blocks of ``chunk_size`` samples x ``chunk_size`` references (memory bounded by the
    block), then recomputed directly for the two nearest references so that the small
    distance of a near-copy has no cancellation error.

    Parameters
    ----------
    samples : array_like, shape (N, ...)
    references : array_like, shape (M, ...), M >= 2
        E.g. the few-shot targets the samples were discovered from.
    features : callable, optional
        Maps an (n, C, H, W) array to (n, D) features (e.g. :func:`load_feature_extractor`);
        default the flattened values as given (normalized pixels in [-1, 1] for tensor
        files).
    chunk_size : int

    Returns
    -------
    pandas.DataFrame
        One row per sample: ``nearest_index`` (row of ``references``), ``second_index``,
        ``d1``, ``d2`` (feature units), ``ratio`` = d1 / d2 (1 where d1 = d2 = 0).
    """
    import pandas as pd

    s = _features(samples, features)
    r = _features(references, features)
    if r.shape[0] < 2:
        raise ValueError("nearest-neighbour ratios need at least 2 references")
    if s.shape[1] != r.shape[1]:
        raise ValueError(f"samples have {s.shape[1]} features, references {r.shape[1]}")
    r_sq = np.einsum("ij,ij->i", r, r)
    best_d = np.empty((s.shape[0], 2))
    best_i = np.empty((s.shape[0], 2), dtype=np.int64)
    for s0 in range(0, s.shape[0], chunk_size):
        block = s[s0:s0 + chunk_size]
        b_sq = np.einsum("ij,ij->i", block, block)
        cur_d = np.full((block.shape[0], 2), np.inf)
        cur_i = np.zeros((block.shape[0], 2), dtype=np.int64)
        for r0 in range(0, r.shape[0], chunk_size):
            d2 = b_sq[:, None] + r_sq[None, r0:r0 + chunk_size] - 2.0 * block @ r[r0:r0 + chunk_size].T
            cand_d = np.concatenate([cur_d, d2], axis=1)
            cand_i = np.concatenate([cur_i, np.broadcast_to(np.arange(r0, r0 + d2.shape[1]), d2.shape)], axis=1)
            top = np.argpartition(cand_d, 1, axis=1)[:, :2]
            cur_d = np.take_along_axis(cand_d, top, axis=1)
            cur_i = np.take_along_axis(cand_i, top, axis=1)
        best_i[s0:s0 + block.shape[0]] = cur_i
        best_d[s0:s0 + block.shape[0]] = np.linalg.norm(block[:, None, :] - r[cur_i], axis=2)
    order = np.argsort(best_d, axis=1, kind="stable")
    best_d = np.take_along_axis(best_d, order, axis=1)
    best_i = np.take_along_axis(best_i, order, axis=1)
    d1, d2 = best_d[:, 0], best_d[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(d2 > 0, d1 / d2, 1.0)
    return pd.DataFrame({"nearest_index": best_i[:, 0], "second_index": best_i[:, 1],
                         "d1": d1, "d2": d2, "ratio": ratio})


def memorization_score(ratios, threshold: float = 1.0 / 3.0) -> float:
    """Share of samples that are near-copies of a reference (Zhang et al. 2024).

    A sample counts as memorized when its nearest reference is much closer than the
    second nearest: d1 / d2 < ``threshold`` (1/3, as commonly used).

    Parameters
    ----------
    ratios : pandas.DataFrame (with a ``ratio`` column) or array_like
        From :func:`nearest_neighbour_ratios`.
    threshold : float

    Returns
    -------
    float
        In [0, 1]; NaN for no samples.
    """
    values = ratios["ratio"] if hasattr(ratios, "columns") else ratios
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        return float("nan")
    return float(np.mean(values < threshold))


def paired_cosine_similarity(set_a, set_b, features: Callable | None = None, center: bool | None = None) -> np.ndarray:
    """Cosine similarity of the features of a_i and b_i for every pair i.

    Parameters
    ----------
    set_a, set_b : array_like, shape (N, ...)
        Row i of each comes from the same initial latent.
    features : callable, optional
        As in :func:`nearest_neighbour_ratios`; default the flattened pixels.
    center : bool, optional
        Subtract each feature vector's own mean first; then the similarity is the Pearson
        correlation of the two images. Default True for pixel features, whose common
        offset (a dark sky at -1) would make any two images look alike, False for a
        feature extractor.

    Returns
    -------
    numpy.ndarray, shape (N,)
        In [-1, 1]; 0 where a vector is constant (zero after centring).
    """
    fa, fb = _features(set_a, features), _features(set_b, features)
    if fa.shape != fb.shape:
        raise ValueError(f"paired sets must have one shape, got {fa.shape} and {fb.shape}")
    if center is None:
        center = features is None
    if center:
        fa = fa - fa.mean(axis=1, keepdims=True)
        fb = fb - fb.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(fa, axis=1) * np.linalg.norm(fb, axis=1)
    dot = np.einsum("ij,ij->i", fa, fb)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, dot / norm, 0.0)


def reproducibility_score(set_a, set_b, threshold: float = 0.6, features: Callable | None = None,
                          center: bool | None = None) -> float:
    """Share of same-latent pairs whose features are near-identical (Zhang et al. 2024).

    Pair i is (a_i, b_i), two samples decoded from the same initial latent (two models,
    two runs, two settings). It counts as reproduced when the cosine similarity of their
    features exceeds ``threshold``. Zhang et al. use SSCD copy-detection features and 0.6;
    pass such an extractor as ``features`` (:func:`load_feature_extractor`). With the
    default pixel features the vectors are centred (Pearson correlation, see
    :func:`paired_cosine_similarity`), so independent images score about 0.

    Returns
    -------
    float
        In [0, 1]; NaN for no pairs.
    """
    similarity = paired_cosine_similarity(set_a, set_b, features, center)
    if similarity.size == 0:
        return float("nan")
    return float(np.mean(similarity > threshold))


def load_feature_extractor(path, device: str = "cpu", batch_size: int = 64) -> Callable[[np.ndarray], np.ndarray]:
    """Load a user-supplied TorchScript (or ``torch.export``) feature model.

    Parameters
    ----------
    path : str or Path
        A file saved by ``torch.jit.save`` (e.g. the SSCD copy-detection model) or by
        ``torch.export.save``; it must map a float32 (n, C, H, W) tensor of images in
        [-1, 1] to (n, D) features (other shapes are flattened per image).
    device : str
    batch_size : int

    Returns
    -------
    callable
        ``extract(images) -> numpy.ndarray (N, D) float64``, batched, gradients off.

    Raises
    ------
    InputError
        The file does not exist or is not a loadable model.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "feature-extractor model file does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in favour of export
            model = torch.jit.load(str(path), map_location=device)
    except Exception as jit_exc:  # torch raises RuntimeError / ValueError for foreign files
        try:
            model = torch.export.load(str(path)).module().to(device)
        except Exception:
            raise InputError(path, f"is not a TorchScript or torch.export model ({jit_exc})") from None
    if hasattr(model, "eval"):
        model.eval()

    def extract(images) -> np.ndarray:
        x = np.asarray(images, dtype=np.float32)
        if x.ndim != 4:
            raise ValueError(f"the feature extractor takes (N, C, H, W) images, got shape {x.shape}")
        out = []
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                batch = torch.from_numpy(x[start:start + batch_size]).to(device)
                try:
                    feats = model(batch)
                except Exception as exc:
                    raise InputError(path, f"the model failed on a batch of shape {tuple(batch.shape)} "
                                           f"({type(exc).__name__}: {exc})") from None
                out.append(feats.reshape(feats.shape[0], -1).double().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, 0))

    return extract


# --------------------------------------------------------------------------------------
# Comparing sets with the real targets
# --------------------------------------------------------------------------------------


def _as_maps(x, channel: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 4:
        x = x[:, channel]
    if x.ndim != 3:
        raise ValueError(f"fields must be (N, H, W) or (N, C, H, W), got shape {x.shape}")
    return x


def _power_input(maps: np.ndarray, power_of: str) -> tuple[np.ndarray, dict]:
    if power_of == "log10":
        return _log10_values(maps).reshape(maps.shape), {"overdensity": False}
    if power_of == "overdensity":
        return maps, {"overdensity": True}
    if power_of == "field":
        return maps, {"overdensity": False}
    raise ValueError(f"power_of must be one of {FIELD_POWER_OF}, got {power_of!r}")


def _mean_spectrum(maps, boxlength, power_of, window):
    data, options = _power_input(maps, power_of)
    k, power, _ = radial_power_spectrum(data, boxlength, window=window, **options)
    return k, power.mean(axis=0)


def _row(set_name, statistic, value, units, set_value=np.nan, real_value=np.nan, n_set=0, n_real=0):
    return {"set": set_name, "statistic": statistic, "value": float(value), "units": units,
            "set_value": float(set_value), "real_value": float(real_value),
            "n_set": int(n_set), "n_real": int(n_real)}


def compare_sets(real: Mapping[str, np.ndarray], sets: Mapping[str, np.ndarray], kind: str = "field",
                 memorization_reference: str = "fewshot", target_keys=None, boxlength=1.0,
                 power_of: str = "log10", k_range=None, window=None, channel: int = 0,
                 features: Callable | None = None, memorization_threshold: float = 1.0 / 3.0,
                 morphology_kwargs: dict | None = None):
    """Distance of every set's statistics to those of the real target maps.

    Parameters
    ----------
    real : dict of str -> ndarray
        Real target-domain data in physical units, e.g. ``{"fewshot": ..., "heldout": ...}``;
        fields (N, H, W) or (N, C, H, W), galaxies (N, C, H, W) or (N, H, W).
    sets : dict of str -> ndarray
        The sets to judge (discovered samples, in-domain samples, baseline...), same layout.
    kind : {"field", "galaxy"}
    memorization_reference : str
        Key of ``real`` holding the few-shot targets, the references of the memorization
        score.
    target_keys : sequence of str, optional
        Keys of ``real`` pooled into the statistical target; default all of them.
    boxlength : float or (float, float)
        Map side length(s) for the power spectra (only the units of k depend on it).
    power_of : {"log10", "overdensity", "field"}
        Fields only: the spectrum is of log10 f (default: fields span decades, the log
        spectrum is not dominated by a few bright pixels), of f / <f> - 1, or of f.
    k_range : (float, float), optional
        Fields only: slope-fit range in angular wavenumber (``boxlength`` units); default
        2 dk to half the Nyquist wavenumber (skips the largest scale and the pixel scale,
        where resampling smooths), at least to 5 dk.
    window : optional
        Window of the power spectra (see :func:`radial_power_spectrum`).
    channel : int
        Fields only: channel of a 4-D input.
    features : callable, optional
        Features for the memorization score; default the flattened log10 values (fields)
        or values (galaxies).
    memorization_threshold : float
    morphology_kwargs : dict, optional
        Galaxies only: keywords of :func:`galaxy_morphology`.

    Returns
    -------
    pandas.DataFrame
        One row per (set, statistic): ``set``, ``statistic``, ``value``, ``units``,
        ``set_value`` and ``real_value`` (the statistic itself where it has one, else NaN),
        ``n_set``, ``n_real``. Statistics, with the meaning of ``value``:

        fields
            ``power_log10_distance`` mean over k-bins of |log10 P_set - log10 P_real| of the
            set-mean spectra (dex); ``power_slope_difference`` slope_set - slope_real;
            ``pdf_w1_log10`` W1 of pooled log10 values (dex); ``log10_mean_difference``,
            ``log10_std_difference`` (dex), ``log10_skewness_difference``,
            ``log10_kurtosis_difference`` (set minus real).
        galaxies
            ``<parameter>_w1`` W1 of each statmorph parameter over successful fits
            (``set_value``/``real_value``: the medians); ``failed_fit_share`` the share of
            failed fits of the set (``real_value``: of the real images).
        both
            ``memorization_score`` share of the set's samples with d1/d2 < threshold against
            ``real[memorization_reference]`` (fraction).
    """
    import pandas as pd

    if kind not in ("field", "galaxy"):
        raise ValueError(f"kind must be 'field' or 'galaxy', got {kind!r}")
    if memorization_reference not in real:
        raise ValueError(f"real has no {memorization_reference!r} entry for the memorization score; "
                         f"its keys are {sorted(real)}")
    keys = list(real) if target_keys is None else list(target_keys)
    target = np.concatenate([np.asarray(real[k], dtype=np.float64) for k in keys])
    n_real = target.shape[0]
    if features is None:
        features = (lambda x: _log10_values(x).reshape(len(x), -1)) if kind == "field" else None
    references = real[memorization_reference]
    rows = []
    if kind == "field":
        real_maps = _as_maps(target, channel)
        k, p_real = _mean_spectrum(real_maps, boxlength, power_of, window)
        dk, k_nyquist = _fundamental(real_maps.shape[1:], boxlength)
        # default: skip the largest scale and the resampling-smoothed pixel scale, but keep at
        # least four bins on small maps (16x16: Nyquist is only 8 dk)
        k_lo, k_hi = k_range if k_range is not None else (2.0 * dk, max(0.5 * k_nyquist, 5.0 * dk))
        slope_real = fit_power_law(k, p_real, k_lo, k_hi)[0]
        real_log = _log10_values(real_maps)
        moments_real = pdf_moments(real_log, log10=False)
        for name, data in sets.items():
            maps = _as_maps(data, channel)
            n = maps.shape[0]
            _, p_set = _mean_spectrum(maps, boxlength, power_of, window)
            in_range = (k >= k_lo) & (k <= k_hi) & (p_set > 0) & (p_real > 0)
            distance = np.mean(np.abs(np.log10(p_set[in_range]) - np.log10(p_real[in_range])))
            rows.append(_row(name, "power_log10_distance", distance, "dex", n_set=n, n_real=n_real))
            slope = fit_power_law(k, p_set, k_lo, k_hi)[0]
            rows.append(_row(name, "power_slope_difference", slope - slope_real, "", slope, slope_real, n, n_real))
            set_log = _log10_values(maps)
            rows.append(_row(name, "pdf_w1_log10", wasserstein1(set_log, real_log), "dex", n_set=n, n_real=n_real))
            moments = pdf_moments(set_log, log10=False)
            for moment, unit in (("mean", "dex"), ("std", "dex"), ("skewness", ""), ("kurtosis", "")):
                rows.append(_row(name, f"log10_{moment}_difference", moments[moment] - moments_real[moment], unit,
                                 moments[moment], moments_real[moment], n, n_real))
    else:
        kwargs = dict(morphology_kwargs or {})
        real_table = galaxy_morphology(target, **kwargs)
        real_ok = real_table[~real_table["failed"]]
        for name, data in sets.items():
            table = galaxy_morphology(np.asarray(data, dtype=np.float64), **kwargs)
            ok = table[~table["failed"]]
            n = len(table)
            for parameter in MORPHOLOGY_PARAMETERS:
                a, b = ok[parameter].to_numpy(), real_ok[parameter].to_numpy()
                distance = wasserstein1(a, b) if a.size and b.size else np.nan
                rows.append(_row(name, f"{parameter}_w1", distance, "",
                                 np.median(a) if a.size else np.nan, np.median(b) if b.size else np.nan,
                                 n, n_real))
            share = float(table["failed"].mean()) if n else np.nan
            rows.append(_row(name, "failed_fit_share", share, "fraction", share,
                             float(real_table["failed"].mean()), n, n_real))
    for name, data in sets.items():
        ratios = nearest_neighbour_ratios(data, references, features)
        score = memorization_score(ratios, memorization_threshold)
        rows.append(_row(name, "memorization_score", score, "fraction", score, np.nan, len(ratios), len(references)))
    columns = ["set", "statistic", "value", "units", "set_value", "real_value", "n_set", "n_real"]
    return pd.DataFrame(rows, columns=columns)


def dataset_statistics(tensors_path, set_paths: Mapping[str, object], kind: str = "field", cfg: dict | None = None):
    """Statistics of every sample set of one dataset against its few-shot targets.

    Every set (discovered samples, base-model samples, the fine-tuned baseline) is mapped
    to physical units through the dataset's normalization record; the held-out targets
    are added as the ``heldout`` set, the floor that sampling noise alone gives.

    Parameters
    ----------
    tensors_path : the dataset's ``tensors.h5`` (few-shot and held-out targets, the record).
    set_paths : set name -> tensor file of samples.
    kind : ``field`` (power spectra, PDFs) or ``galaxy`` (morphology).
    cfg : the config's ``stats`` section: ``power_of``, ``window``, ``memorization_threshold``,
        ``feature_extractor`` (a TorchScript file, or null for pixels), ``boxlength``.

    Returns
    -------
    comparison : DataFrame of :func:`compare_sets` (one row per set and statistic).
    spectra : DataFrame, fields only (else empty): ``set``, ``k``, ``power_mean``,
        ``power_std``, ``n_maps`` per k-bin, for the figures.
    """
    import pandas as pd

    from .normalize import NormalizationRecord
    from .store import SPLIT_FEWSHOT, SPLIT_HELDOUT, read_tensor_file

    cfg = dict(cfg or {})
    images = read_tensor_file(tensors_path)
    if not images.attrs.get("normalization"):
        raise InputError(tensors_path, "has no normalization record")
    record = NormalizationRecord.from_json(images.attrs["normalization"])
    real = {SPLIT_FEWSHOT: record.to_physical(images.subset(SPLIT_FEWSHOT).x)}
    sets = {name: record.to_physical(read_tensor_file(path).x) for name, path in set_paths.items()}
    sets[SPLIT_HELDOUT] = record.to_physical(images.subset(SPLIT_HELDOUT).x)
    features = None
    if cfg.get("feature_extractor"):
        extractor = load_feature_extractor(cfg["feature_extractor"])
        features = lambda x: extractor(record.to_normalized(x)[0])  # noqa: E731  (extractors see [-1, 1])
    power_of = cfg.get("power_of", "log10")
    window = cfg.get("window")
    boxlength = float(cfg.get("boxlength", 1.0))
    comparison = compare_sets(real, sets, kind, boxlength=boxlength, power_of=power_of, window=window,
                              features=features,
                              memorization_threshold=float(cfg.get("memorization_threshold", 1.0 / 3.0)))
    rows = []
    if kind == "field":
        for name, data in {**real, **sets}.items():
            maps, options = _power_input(_as_maps(data, 0), power_of)
            k, power, _ = radial_power_spectrum(maps, boxlength, window=window, **options)
            for j in range(len(k)):
                rows.append({"set": name, "k": float(k[j]), "power_mean": float(np.nanmean(power[:, j])),
                             "power_std": float(np.nanstd(power[:, j])), "n_maps": len(maps)})
    return comparison, pd.DataFrame(rows, columns=["set", "k", "power_mean", "power_std", "n_maps"])
