"""Physical values <-> the model's [-1, 1] range, through invertible, recorded transforms.

A :class:`NormalizationRecord` says everything needed to map a generated sample back to
physical units: the transform ``T`` and its parameters, ``lo``/``hi`` in transformed space
(one pair per source channel), the units, the channel mapping onto the model's channels,
and what was clipped. Normalized values are

    y = 2 (A(T(x)) - lo) / (hi - lo) - 1, clipped to [-1, 1],

with ``A`` the identity unless the record Gaussianizes (below), and the inverse is exact on
unclipped pixels. Clipping is never silent: every transform
returns the mask of the pixels it could not represent (outside [lo, hi], or lost inside
the Lupton stretch), the record holds their share, ingest keeps the mask beside the
tensors, and :meth:`NormalizationRecord.clip_mask` marks the model outputs that sit at the
bounds, where :meth:`NormalizationRecord.to_physical` cannot tell the value.

Transforms
----------
``log10``
    T(x) = log10(x); for strictly positive fields (radiation field G0, column density).
``asinh``
    T(x) = asinh(x / a) with softening ``a`` in the data's units (one value, or one per
    channel); linear below ``a``, logarithmic above, defined for negative values
    (sky-subtracted fluxes). Per band, with ``a_b = stretch * band_scale_b / Q``, it is the
    invertible counterpart of the Lupton stretch below.
``linear``
    T(x) = x.
``lupton``
    The Lupton et al. (2004) colour-preserving asinh stretch of three bands at once
    (astropy.visualization.make_lupton_rgb, float output): bands are divided by
    ``band_scales`` and shifted by ``minimum``, the mean intensity I is stretched to
    f(I) = slope asinh(I Q / stretch) with slope = 0.1 / asinh(0.1 Q), and each band is
    multiplied by f(I) / I. Output is in [0, 1]; pixels where a band went negative or the
    brightest band exceeded 1 are clipped by that algorithm and not invertible. Which
    band-pixels those are is measured on astropy's own output (:func:`lupton_lost`), and
    ingest refuses a dataset where their share exceeds ``max_clipped_share``.

Gaussianization
---------------
``gaussianize`` (optional, after any transform but ``lupton``) adds a monotone map ``A`` from
T(x) to normal scores: the piecewise-linear interpolation of knots (t_k, z_k) with z_k evenly
spaced between the normal scores of the few-shot maps' smallest and largest value,
z = +-Phi^-1(0.5 / n) for n pooled values, and t_k the values at those quantiles (Hazen
plotting positions, so the end knots are the data's minimum and maximum). The few-shot
maps' pooled values then follow a standard normal; ``lo``/``hi`` are taken in z, so
percentiles (0, 100) keep every few-shot value. This is the normal-score transform
(Gaussian anamorphosis) of geostatistics, or the rank-order Gaussianization of cosmological
density fields (Weinberg 1992): it is what makes mixing fields keep their one-point
distribution, because a weighted sum of independent standard normal fields with squared
weights summing to one is again standard normal, while a mixture of two fields with excess
kurtosis k has about k / 2 (discovery's ``pairs`` candidates are such mixtures). ``A`` is
strictly increasing, so the inverse is exact on unclipped pixels; beyond the end knots it
continues the end segments' lines, so a value outside the few-shot range lands outside
[lo, hi] and is counted as clipped. Repeated values (an atom of the distribution) become one
knot: the normal scores are then Gaussian except for the atom.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import ConfigError

TRANSFORMS = ("log10", "asinh", "linear", "lupton")
#: Knots of the Gaussianizing map per source channel, by default.
GAUSSIANIZE_KNOTS = 129
CHANNEL_MODES = ("identity", "replicate")


def _lupton_slope(Q: float) -> float:
    return 0.1 / np.arcsinh(0.1 * Q)


def lupton_forward(bands: np.ndarray, Q: float, stretch: float, minimum, band_scales) -> np.ndarray:
    """Lupton RGB of (N, 3, H, W) fluxes through astropy; returns (N, 3, H, W) in [0, 1].

    Channel 0 is red (the reddest band), as in ``make_lupton_rgb(image_r, image_g, image_b)``.
    """
    from astropy.visualization import ManualInterval, make_lupton_rgb

    scaled = bands / np.asarray(band_scales, dtype=np.float64)[None, :, None, None]
    out = np.empty_like(scaled)
    intervals = [ManualInterval(vmin=float(m), vmax=None) for m in minimum]
    for i, img in enumerate(scaled):
        rgb = make_lupton_rgb(img[0], img[1], img[2], interval=intervals, stretch=stretch, Q=Q,
                              output_dtype=np.float64)
        out[i] = np.moveaxis(rgb, -1, 0)
    return out


def lupton_inverse(rgb: np.ndarray, Q: float, stretch: float, minimum, band_scales) -> np.ndarray:
    """Invert :func:`lupton_forward` on unclipped pixels: (N, 3, H, W) in [0, 1] -> fluxes."""
    rgb = np.asarray(rgb, dtype=np.float64)
    f_intensity = rgb.mean(axis=1, keepdims=True)  # mean(X) = f(I): f(I)/I is common to all bands
    intensity = stretch / Q * np.sinh(f_intensity / _lupton_slope(Q))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(f_intensity > 0, intensity / f_intensity, 0.0)
    shifted = rgb * ratio
    minimum = np.asarray(minimum, dtype=np.float64)[None, :, None, None]
    return (shifted + minimum) * np.asarray(band_scales, dtype=np.float64)[None, :, None, None]


def lupton_lost(bands: np.ndarray, rgb: np.ndarray, Q: float, stretch: float, minimum, band_scales,
                rtol: float = 1e-6) -> np.ndarray:
    """Band-pixels that astropy's Lupton output ``rgb`` cannot give back: (N, 3, H, W) bool.

    Measured on the output itself: a band-pixel is lost when :func:`lupton_inverse` of
    ``rgb`` misses the input flux by more than ``rtol`` (relative to |flux| plus the band's
    scale, so that fluxes near zero are judged on the band's own scale). That catches the
    bands make_lupton_rgb set to zero (negative after the shift), every band of a pixel it
    rescaled because its brightest band exceeded 1, and the other bands of a pixel with a
    zeroed band, whose mean intensity, and so whose inverse, changed with it.
    """
    scales = np.asarray(band_scales, dtype=np.float64)[None, :, None, None]
    back = lupton_inverse(rgb, Q, stretch, minimum, band_scales)
    return ~(np.abs(back - bands) <= rtol * (np.abs(bands) + scales))


def _softening(params: dict, n_channels: int) -> np.ndarray:
    """The asinh softening as a (1, C, 1, 1) array (one value for all channels, or one each)."""
    a = np.atleast_1d(np.asarray(params["softening"], dtype=np.float64))
    if a.size not in (1, n_channels):
        raise ConfigError(f"asinh softening has {a.size} values for {n_channels} channel(s)")
    return np.broadcast_to(a, (n_channels,))[None, :, None, None]


def transform_with_mask(x: np.ndarray, transform: str, params: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """T(x) and the mask of values T lost (only the Lupton stretch loses any; else None)."""
    x = np.asarray(x, dtype=np.float64)
    if transform == "lupton":
        rgb = lupton_forward(x, **params)
        return rgb, lupton_lost(x, rgb, **params)
    return forward_transform(x, transform, params), None


def forward_transform(x: np.ndarray, transform: str, params: dict) -> np.ndarray:
    """Apply T to physical values (N, C, H, W); no range checks (see :func:`check_domain`)."""
    x = np.asarray(x, dtype=np.float64)
    if transform == "log10":
        return np.log10(x)
    if transform == "asinh":
        return np.arcsinh(x / _softening(params, x.shape[1]))
    if transform == "linear":
        return x.copy()
    if transform == "lupton":
        return lupton_forward(x, **params)
    raise ConfigError(f"unknown transform {transform!r}; choose one of {TRANSFORMS}")


def inverse_transform(t: np.ndarray, transform: str, params: dict) -> np.ndarray:
    """Apply T^-1 to transformed values (N, C, H, W)."""
    t = np.asarray(t, dtype=np.float64)
    if transform == "log10":
        return np.power(10.0, t)
    if transform == "asinh":
        return np.sinh(t) * _softening(params, t.shape[1])
    if transform == "linear":
        return t.copy()
    if transform == "lupton":
        return lupton_inverse(t, **params)
    raise ConfigError(f"unknown transform {transform!r}; choose one of {TRANSFORMS}")


def check_domain(x: np.ndarray, transform: str) -> str | None:
    """A description of the values T cannot take, or None when all are valid."""
    if not np.isfinite(x).all():
        n_nan = int(np.isnan(x).sum())
        n_inf = int(np.isinf(x).sum())
        return f"{n_nan} NaN (or BLANK) and {n_inf} infinite pixel(s)"
    if transform == "log10":
        bad = int((x <= 0).sum())
        if bad:
            return (f"{bad} non-positive pixel(s) (min {float(x.min()):.4g}) under the log10 transform; "
                    "use transform 'asinh' for fields that reach zero")
    return None


def _piecewise_linear(x: np.ndarray, xk: np.ndarray, yk: np.ndarray) -> np.ndarray:
    """Interpolate through knots (xk strictly increasing), continuing the end segments' lines."""
    y = np.interp(x, xk, yk)
    below, above = x < xk[0], x > xk[-1]
    if below.any():
        y[below] = yk[0] + (x[below] - xk[0]) * (yk[1] - yk[0]) / (xk[1] - xk[0])
    if above.any():
        y[above] = yk[-1] + (x[above] - xk[-1]) * (yk[-1] - yk[-2]) / (xk[-1] - xk[-2])
    return y


def _through_knots(values: np.ndarray, gaussianize: dict | None, inverse: bool) -> np.ndarray:
    if gaussianize is None:
        return values
    out = np.empty_like(values, dtype=np.float64)
    for c in range(values.shape[1]):
        t = np.asarray(gaussianize["knots"][c], dtype=np.float64)
        z = np.asarray(gaussianize["scores"][c], dtype=np.float64)
        out[:, c] = _piecewise_linear(values[:, c], z, t) if inverse else _piecewise_linear(values[:, c], t, z)
    return out


def to_scores(transformed: np.ndarray, gaussianize: dict | None) -> np.ndarray:
    """The normal-score map A of a record's ``gaussianize`` knots on (N, C, H, W) values of T;
    the values themselves when there are none."""
    return _through_knots(transformed, gaussianize, inverse=False)


def from_scores(scores: np.ndarray, gaussianize: dict | None) -> np.ndarray:
    """The inverse of :func:`to_scores`."""
    return _through_knots(scores, gaussianize, inverse=True)


def fit_gaussianizing_knots(values: np.ndarray, n_knots: int = GAUSSIANIZE_KNOTS) -> tuple[list, list]:
    """Knots (t_k, z_k) of the normal-score map of ``values`` (pooled): see the module docstring.

    The z_k are evenly spaced in [Phi^-1(0.5 / n), -Phi^-1(0.5 / n)]; the t_k are the values'
    quantiles at Phi(z_k) with Hazen plotting positions (``numpy.quantile(method="hazen")``),
    rounded to 10 significant digits (the record is stored as JSON; forward and inverse use
    the same rounded knots, so the round trip stays exact); repeated t_k are merged.
    """
    from scipy.special import ndtr, ndtri

    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size < 2 or n_knots < 2:
        raise ConfigError(f"Gaussianizing needs at least 2 values and 2 knots, got {values.size} and {n_knots}")
    z_end = float(-ndtri(0.5 / values.size))
    z = np.linspace(-z_end, z_end, int(n_knots))
    t = np.array([float(f"{v:.10g}") for v in np.quantile(values, ndtr(z), method="hazen")])
    keep = np.concatenate([[True], np.diff(t) > 0])
    if keep.sum() < 2:
        raise ConfigError(f"the values are constant ({t[0]:.6g}); nothing to Gaussianize")
    return t[keep].tolist(), [float(f"{v:.10g}") for v in z[keep]]


@dataclass
class NormalizationRecord:
    """Everything needed to go from physical values to [-1, 1] and back.

    Attributes
    ----------
    transform : str
        ``log10``, ``asinh``, ``linear`` or ``lupton``.
    params : dict
        Transform parameters (``softening`` for asinh; ``Q``, ``stretch``, ``minimum``,
        ``band_scales`` for lupton).
    lo, hi : list of float
        Per source channel, in transformed space; they map to -1 and +1.
    units : list of str
        Astropy unit string of each source channel ("" for dimensionless).
    channel_names : list of str
        Name of each source channel (a field or a band).
    channel_mode : str
        ``identity`` (source channel c is model channel c) or ``replicate`` (one source
        field copied to every model channel; the inverse averages them).
    model_channels : int
        Channels the diffusion model sees.
    clipped_fraction : float
        Share of the source-channel pixels of the maps the record was fitted on (the few-shot
        maps) that were clipped: outside [-1, 1], or lost inside the transform (Lupton). The
        record travels into every later file, so it depends on those maps alone; ingest keeps
        every split's share in tensors.h5's ``clipped_share`` and the pixels in ``clipped``.
    transform_clipped_fraction : float
        The part of it lost inside the transform itself (Lupton's zeroed and saturated
        band-pixels); 0 for the other transforms.
    percentiles : list of float or None
        The percentiles ``lo``/``hi`` came from, or None when set explicitly.
    fitted_on : str
        Which maps the percentiles were taken over (ingest: ``fewshot``, so the held-out
        targets stay unseen).
    geometry : dict
        What was done to the pixel grid: crop, resampling, original shape.
    gaussianize : dict or None
        The normal-score map A after T (module docstring): ``knots`` (per source channel, the
        t_k in transformed space) and ``scores`` (the z_k); ``lo``/``hi`` are then normal
        scores. None: no such map.
    """

    transform: str
    params: dict
    lo: list
    hi: list
    units: list
    channel_names: list
    channel_mode: str = "identity"
    model_channels: int = 3
    clipped_fraction: float = 0.0
    transform_clipped_fraction: float = 0.0
    percentiles: list | None = None
    fitted_on: str = "all"
    geometry: dict = field(default_factory=dict)
    gaussianize: dict | None = None

    def __post_init__(self):
        if self.transform not in TRANSFORMS:
            raise ConfigError(f"unknown transform {self.transform!r}; choose one of {TRANSFORMS}")
        if self.channel_mode not in CHANNEL_MODES:
            raise ConfigError(f"unknown channel mode {self.channel_mode!r}; choose one of {CHANNEL_MODES}")
        n = len(self.channel_names)
        if not (len(self.lo) == len(self.hi) == len(self.units) == n):
            raise ConfigError("lo, hi, units and channel_names must have one entry per source channel")
        if any(h <= l for l, h in zip(self.lo, self.hi)):
            raise ConfigError(f"hi must exceed lo for every channel, got lo={self.lo} hi={self.hi}")
        if self.channel_mode == "replicate" and n != 1:
            raise ConfigError(f"channel mode 'replicate' needs one source channel, got {n}")
        if self.channel_mode == "identity" and n != self.model_channels:
            raise ConfigError(f"{n} source channel(s) cannot map one-to-one onto "
                              f"{self.model_channels} model channels; use channels: replicate for one field")
        if self.gaussianize is not None:
            if self.transform == "lupton":
                raise ConfigError("gaussianize does not apply to the lupton stretch (its bands are not one field "
                                  "each); use asinh with the same scales")
            knots, scores = self.gaussianize.get("knots"), self.gaussianize.get("scores")
            if not (isinstance(knots, list) and isinstance(scores, list) and len(knots) == len(scores) == n):
                raise ConfigError("gaussianize needs 'knots' and 'scores', one list per source channel")
            for c, (t, z) in enumerate(zip(knots, scores)):
                t, z = np.asarray(t, dtype=np.float64), np.asarray(z, dtype=np.float64)
                if t.shape != z.shape or t.size < 2 or not (np.all(np.diff(t) > 0) and np.all(np.diff(z) > 0)):
                    raise ConfigError(f"gaussianize knots of channel {c} must be two increasing lists of one "
                                      "length (at least 2)")

    @property
    def source_channels(self) -> int:
        return len(self.channel_names)

    def _bounds(self):
        lo = np.asarray(self.lo, dtype=np.float64)[None, :, None, None]
        hi = np.asarray(self.hi, dtype=np.float64)[None, :, None, None]
        return lo, hi

    def scores(self, transformed: np.ndarray) -> np.ndarray:
        """A(T(x)): transformed values (N, C_source, H, W) in the space of ``lo``/``hi`` (normal
        scores when the record Gaussianizes, else unchanged)."""
        return to_scores(transformed, self.gaussianize)

    def unscores(self, scores: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`scores`."""
        return from_scores(scores, self.gaussianize)

    def to_normalized(self, physical: np.ndarray, clip: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Physical (N, C_source, H, W) -> normalized (N, model_channels, H, W) float32.

        Returns the normalized array and a boolean mask (N, C_source, H, W) of clipped pixels:
        outside [lo, hi], or lost inside the transform (:func:`lupton_lost`). With
        ``clip=False`` values beyond [lo, hi] keep their place on the same affine scale (outside
        [-1, 1]; the mask still marks them): what the model would see without the bounds.
        """
        y, clipped, _ = self._normalize(physical, clip)
        return y, clipped

    def _normalize(self, physical, clip: bool = True):
        physical = np.asarray(physical, dtype=np.float64)
        if physical.ndim != 4 or physical.shape[1] != self.source_channels:
            raise ValueError(f"expected (N, {self.source_channels}, H, W), got {physical.shape}")
        lo, hi = self._bounds()
        transformed, lost = transform_with_mask(physical, self.transform, self.params)
        y = 2.0 * (self.scores(transformed) - lo) / (hi - lo) - 1.0
        clipped = (y < -1.0) | (y > 1.0)
        if lost is None:
            lost = np.zeros_like(clipped)
        clipped |= lost
        if clip:
            y = np.clip(y, -1.0, 1.0)
        if self.channel_mode == "replicate":
            y = np.repeat(y, self.model_channels, axis=1)
        return y.astype(np.float32), clipped, lost

    def to_model_channels(self, mask: np.ndarray) -> np.ndarray:
        """A source-channel mask (N, C_source, H, W) laid out like the model's tensors."""
        mask = np.asarray(mask)
        return np.repeat(mask, self.model_channels, axis=1) if self.channel_mode == "replicate" else mask

    def clip_mask(self, normalized: np.ndarray, tolerance: float = 1e-6) -> np.ndarray:
        """Pixels whose physical value rests on a clipped model output: (N, C_source, H, W) bool.

        A model output at or beyond -1 or +1 (within ``tolerance``: samples are stored as
        float32, clipped to [-1, 1]) has no physical value of its own; :meth:`to_physical`
        gives ``lo`` or ``hi`` there. With ``replicate`` a pixel counts when any model channel
        is at a bound, since the average that is inverted then contains a clipped value.
        """
        y = np.asarray(normalized, dtype=np.float64)
        if y.ndim != 4 or y.shape[1] != self.model_channels:
            raise ValueError(f"expected (N, {self.model_channels}, H, W), got {y.shape}")
        at_bound = np.abs(y) >= 1.0 - tolerance
        if self.channel_mode == "replicate":
            return at_bound.any(axis=1, keepdims=True)
        return at_bound

    def to_physical(self, normalized: np.ndarray) -> np.ndarray:
        """Normalized (N, model_channels, H, W) -> physical (N, C_source, H, W) float64.

        Values outside [-1, 1] (a generated sample can overshoot) are clipped first, so
        the result stays inside [lo, hi] of the fit (for percentiles, a range narrower than
        the data's own); :meth:`clip_mask` says which pixels sit at those bounds, and the
        writers of :mod:`discoverydiff.physical` keep that mask beside the values.
        """
        return inverse_transform(self.to_transformed(normalized), self.transform, self.params)

    def to_transformed(self, normalized: np.ndarray) -> np.ndarray:
        """Normalized (N, model_channels, H, W) -> T(x) (N, C_source, H, W) float64, e.g. log10 G0.

        The first half of :meth:`to_physical` (clipped to [-1, 1] the same way): an affine map of
        the model's values per channel unless the record Gaussianizes.
        """
        y = np.asarray(normalized, dtype=np.float64)
        if y.ndim != 4 or y.shape[1] != self.model_channels:
            raise ValueError(f"expected (N, {self.model_channels}, H, W), got {y.shape}")
        if self.channel_mode == "replicate":
            y = y.mean(axis=1, keepdims=True)
        y = np.clip(y, -1.0, 1.0)
        lo, hi = self._bounds()
        return self.unscores((y + 1.0) / 2.0 * (hi - lo) + lo)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text) -> NormalizationRecord:
        data = json.loads(text) if isinstance(text, (str, bytes)) else dict(text)
        known = set(cls.__dataclass_fields__)
        missing = {"transform", "params", "lo", "hi", "units", "channel_names"} - set(data)
        if missing:
            raise ConfigError(f"normalization record lacks {sorted(missing)}")
        return cls(**{k: v for k, v in data.items() if k in known})


def fit_normalization(physical: np.ndarray, transform: str, params: dict | None = None,
                      percentiles=(0.5, 99.5), lo=None, hi=None, per_channel: bool = True,
                      units=None, channel_names=None, channel_mode: str = "identity",
                      model_channels: int = 3, geometry: dict | None = None,
                      fit_rows=None, fitted_on: str | None = None, return_normalized: bool = False,
                      gaussianize: bool | int = False):
    """Fit ``lo``/``hi`` on a dataset (or some of its maps) and return its record.

    Parameters
    ----------
    physical : ndarray, shape (N, C_source, H, W)
        The dataset in physical units.
    transform : str
        See the module docstring.
    params : dict, optional
        Transform parameters. For ``asinh`` a missing ``softening`` is set to the median
        absolute value of the data (recorded).
    percentiles : (float, float)
        Robust percentiles of T(x) giving ``lo`` and ``hi`` when they are not set.
    lo, hi : float or list of float, optional
        Explicit bounds in transformed space (e.g. 0 and 255 for 8-bit images).
    per_channel : bool
        One (lo, hi) per source channel, or one pair for all channels.
    units, channel_names : list of str, optional
    channel_mode : str
    model_channels : int
    geometry : dict, optional
        Crop/resample record, stored as given.
    fit_rows : array of bool or int, optional
        The maps the softening and the percentiles are taken from (ingest passes the
        few-shot maps, so the held-out ones stay unseen); default all. The clipped share
        is always that of the whole of ``physical``.
    fitted_on : str, optional
        Name of those maps for the record (default ``all``, or ``subset``).
    return_normalized : bool
        Also return what :meth:`NormalizationRecord.to_normalized` gives for ``physical``
        (computed once here for the clipped share): ``(record, normalized, clipped)``.
    gaussianize : bool or int
        Follow T by the normal-score map fitted on the same maps (module docstring), with
        :data:`GAUSSIANIZE_KNOTS` knots per channel, or as many as an int says; ``lo``,
        ``hi`` and the percentiles are then normal scores. With ``per_channel=False`` one map
        is fitted to all channels' values.
    """
    physical = np.asarray(physical, dtype=np.float64)
    n_channels = physical.shape[1]
    fit_data = physical if fit_rows is None else physical[np.asarray(fit_rows)]
    if fit_data.shape[0] == 0:
        raise ConfigError("no maps to fit the normalization on")
    params = dict(params or {})
    if transform == "asinh" and params.get("softening") is None:
        params["softening"] = float(np.median(np.abs(fit_data))) or 1.0
    if transform == "asinh" and np.any(np.asarray(params["softening"], dtype=np.float64) <= 0):
        raise ConfigError(f"asinh softening must be positive, got {params['softening']}")
    transformed, knots = None, None
    if gaussianize:
        if transform == "lupton":
            raise ConfigError("gaussianize does not apply to the lupton stretch; use asinh with the same scales")
        n_knots = GAUSSIANIZE_KNOTS if gaussianize is True else int(gaussianize)
        transformed = forward_transform(fit_data, transform, params)
        fitted = ([fit_gaussianizing_knots(transformed[:, c], n_knots) for c in range(n_channels)] if per_channel
                  else [fit_gaussianizing_knots(transformed, n_knots)] * n_channels)
        knots = {"knots": [f[0] for f in fitted], "scores": [f[1] for f in fitted]}
        transformed = to_scores(transformed, knots)

    def bound(value, q):
        nonlocal transformed
        if value is not None:
            values = np.broadcast_to(np.asarray(value, dtype=np.float64), (n_channels,))
            return [float(v) for v in values]
        if transformed is None:  # only percentile bounds need the transformed maps (scores, if Gaussianized)
            transformed = forward_transform(fit_data, transform, params)
        if per_channel:
            return [float(np.percentile(transformed[:, c], q)) for c in range(n_channels)]
        return [float(np.percentile(transformed, q))] * n_channels

    lo_v, hi_v = bound(lo, percentiles[0]), bound(hi, percentiles[1])
    for c, (l, h) in enumerate(zip(lo_v, hi_v)):
        if h <= l:
            raise ConfigError(f"channel {c} is constant in transformed space (lo = hi = {l:.6g}); "
                              "nothing to normalize")
    record = NormalizationRecord(
        transform=transform, params=params, lo=lo_v, hi=hi_v,
        units=list(units) if units is not None else [""] * n_channels,
        channel_names=list(channel_names) if channel_names is not None else [f"c{i}" for i in range(n_channels)],
        channel_mode=channel_mode, model_channels=model_channels,
        percentiles=None if lo is not None and hi is not None else [float(p) for p in percentiles],
        fitted_on=fitted_on or ("all" if fit_rows is None else "subset"),
        geometry=dict(geometry or {}), gaussianize=knots,
    )
    normalized, clipped, lost = record._normalize(physical)
    record.clipped_fraction = float(clipped.mean())
    record.transform_clipped_fraction = float(lost.mean())
    return (record, normalized, clipped) if return_normalized else record
