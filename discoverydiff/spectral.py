"""Radial power spectra, and a calibration of a decoded set's spectrum to the few-shot maps'.

Why it is needed (measured on log-normal G0 fields, benchmarks/README.md, "Spectral flattening"):
decoding a latent that is not the exact DDIM inversion of a map lets the frozen base model add
small-scale structure of its own (the added power falls as k^-2, a photograph's law, where the
fields fall as k^-3.3). The decoded mixtures of two targets' latents have the mixed maps' large
scales but 1.5x to 3.4x their power from 1 to 16 cycles per map, so the log10 spectrum
comes out flatter (slope +0.46 +- 0.09 against unseen maps, 5 seeds) although the latents' own
radial spectra are the targets' to 1-4% per bin. Round trips of the targets do not flatten (-0.06);
perturbing only a latent's small scales changes nothing, perturbing only its large scales
(< 4 cycles per map) flattens the decode. Neither the decode's steps, eta, the norm correction,
mixing by frequency band nor setting the latents' spectrum to the targets' removes it; a
shallower t0 reduces it (+0.19 at t0 200) at the cost of recall.

What this module does about it: :func:`fit_calibration` fits the ratio of the decoded set's mean
spectrum to the few-shot maps' as a power law ``c + delta log10 k`` in the values the comparison
measures (e.g. log10 G0), and says whether ``delta`` is beyond what two real sets of the same
sizes show; :func:`apply_calibration` then divides every sample's Fourier modes by that power law
(:func:`power_law_filter`): the phases, each map's mean and the per-map variety stay, only the
set's tilt and level move. It reads the few-shot maps only.

Radial power (:func:`latent_radial_power`): for a stack of C maps (C, H, W), in integer wavenumber
bin k (``round(|k|)``, k in cycles per map side), the mean over channels and over the Fourier
modes of the bin of ``|FFT(z)|^2 / (H W)`` (numpy's unnormalized FFT, divided so that independent
standard normal values have power 1 in every bin).
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_calibration", "calibrate_spectrum", "fit_calibration", "fit_power_ratio", "latent_radial_power",
           "power_law_filter", "radial_bin_index"]


def radial_bin_index(shape: tuple[int, int]) -> np.ndarray:
    """(H, W) integer radial bin of every mode of ``numpy.fft.fft2``: round(sqrt(kx^2 + ky^2)), k in
    cycles per map side."""
    h, w = (int(v) for v in shape)
    if h < 2 or w < 2:
        raise ValueError(f"maps must be at least 2x2 pixels, got {shape}")
    ky = np.fft.fftfreq(h) * h
    kx = np.fft.fftfreq(w) * w
    return np.rint(np.hypot(ky[:, None], kx[None, :])).astype(np.int64)


def _check(latents) -> np.ndarray:
    z = np.asarray(latents, dtype=np.float64)
    if z.ndim == 3:
        z = z[None]
    if z.ndim != 4:
        raise ValueError(f"latents must be (N, C, H, W) or (C, H, W), got shape {np.shape(latents)}")
    if not np.isfinite(z).all():
        raise ValueError("latents contain NaN or inf")
    return z


def _per_latent_power(f: np.ndarray, index: np.ndarray, n_bins: int) -> np.ndarray:
    """(N, K) mean |f|^2 over channels and modes of each bin, f the (N, C, H, W) FFT / sqrt(H W)."""
    power = (np.abs(f) ** 2).mean(axis=1).reshape(len(f), -1)  # (N, H W)
    counts = np.bincount(index.ravel(), minlength=n_bins)
    sums = np.stack([np.bincount(index.ravel(), weights=p, minlength=n_bins) for p in power])
    return sums / np.maximum(counts, 1)


def latent_radial_power(latents, return_k: bool = False):
    """Mean radial power spectrum of latents (N, C, H, W): (K,) over bins k = 0 .. K-1.

    With ``return_k`` also the bins' wavenumbers (cycles per map side) first: ``(k, power)``.
    """
    z = _check(latents)
    h, w = z.shape[-2:]
    index = radial_bin_index((h, w))
    n_bins = int(index.max()) + 1
    f = np.fft.fft2(z) / np.sqrt(h * w)
    power = _per_latent_power(f, index, n_bins).mean(axis=0)
    return (np.arange(n_bins, dtype=np.float64), power) if return_k else power


def _mean_map_power(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, P(k)) of the channel-mean maps of (N, C, H, W), bins 1 .. min(H, W) // 2 (the full circles)."""
    k, power = latent_radial_power(np.asarray(maps, dtype=np.float64).mean(axis=1, keepdims=True), return_k=True)
    top = min(maps.shape[-2:]) // 2
    return k[1:top + 1], power[1:top + 1]


def fit_power_ratio(maps, reference_maps) -> tuple[float, float]:
    """(c, delta): least-squares fit of log10(P_maps(k) / P_reference(k)) = c + delta log10 k.

    P is the mean radial power (:func:`latent_radial_power`) of each set's channel-mean maps (N, C, H, W),
    over the bins k = 1 .. min(H, W) / 2 (cycles per map side). ``delta`` > 0: ``maps`` have a flatter
    spectrum than the reference.
    """
    a, b = _check(maps), _check(reference_maps)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"maps {a.shape[1:]} and reference maps {b.shape[1:]} differ in shape")
    k, p_a = _mean_map_power(a)
    _, p_b = _mean_map_power(b)
    if not ((p_a > 0).all() and (p_b > 0).all()):
        raise ValueError("a set has no power in some wavenumber bin (constant maps?)")
    delta, c = np.polyfit(np.log10(k), np.log10(p_a / p_b), 1)
    return float(c), float(delta)


def power_law_filter(maps, c: float, delta: float) -> np.ndarray:
    """Maps (N, C, H, W) with every Fourier mode of bin k > 0 multiplied by 10 ** (-(c + delta log10 k) / 2).

    The inverse of a power ratio ``c + delta log10 k`` (:func:`fit_power_ratio`): the power of bin k
    changes by 10 ** -(c + delta log10 k), the mean of each map (k = 0) and the phases stay.
    Returns float32.
    """
    z = _check(maps)
    h, w = z.shape[-2:]
    index = radial_bin_index((h, w))
    k = np.maximum(index, 1).astype(np.float64)
    gain = 10.0 ** (-(c + delta * np.log10(k)) / 2.0)
    gain[index == 0] = 1.0
    out = np.real(np.fft.ifft2(np.fft.fft2(z) * gain))
    return out.reshape(np.shape(maps)).astype(np.float32)


def fit_calibration(samples, reference_physical, record, gate: float = 2.0, draws: int = 200, seed: int = 0) -> dict:
    """The power-law ratio of a decoded set's mean spectrum to the reference maps', in the space the
    comparison measures, and whether it is beyond what two real sets show.

    ``samples`` (N, model channels, H, W) in [-1, 1] go to the record's transformed values
    (``record.to_transformed``, e.g. log10 G0), ``reference_physical`` (M >= 4, source channels, H, W;
    e.g. the few-shot maps' unclipped values) through the record's transform; :func:`fit_power_ratio`
    of the two gives ``c`` and ``delta``. The null spread of ``delta`` comes from the reference maps
    alone: ``draws`` random splits into two halves, the standard deviation of their ``delta``, scaled
    from two sets of M/2 maps to sets of N and M (``sqrt((1/N + 1/M) / (4/M))``). The ratio is to be
    removed (``applied``) only when ``|delta|`` exceeds ``gate`` null standard deviations: a tilt two
    real sets of these sizes show is left alone.

    Returns ``{"c", "delta", "null_sd", "gate", "applied"}``.
    """
    from .normalize import forward_transform

    transformed = record.to_transformed(np.asarray(samples, dtype=np.float64))
    reference = forward_transform(np.asarray(reference_physical, dtype=np.float64), record.transform, record.params)
    if not np.isfinite(reference).all():
        raise ValueError("the reference maps have values outside the record's transform domain")
    n, m = len(transformed), len(reference)
    if m < 4 or n < 1:
        raise ValueError(f"spectral calibration needs at least 4 reference maps and 1 sample, got {m} and {n}")
    c, delta = fit_power_ratio(transformed, reference)
    rng = np.random.default_rng(seed)
    half = m // 2
    null = []
    for _ in range(int(draws)):
        order = rng.permutation(m)
        null.append(fit_power_ratio(reference[order[:half]], reference[order[half:2 * half]])[1])
    null_sd = float(np.std(null, ddof=1) * np.sqrt((1 / n + 1 / m) / (2 / half)))
    return {"c": c, "delta": delta, "null_sd": null_sd, "gate": float(gate),
            "applied": bool(abs(delta) > gate * null_sd)}


def apply_calibration(samples, fit: dict, record) -> np.ndarray:
    """Samples (N, model channels, H, W) with the ratio ``fit`` (:func:`fit_calibration`) removed where
    ``fit["applied"]`` (else returned as they are).

    Each sample alone: its transformed values are filtered by :func:`power_law_filter` and mapped back
    through the record (values beyond its lo/hi clipped to [-1, 1], as any sample's), so a set split
    into shards gives the same maps. Returns float32.
    """
    from .normalize import inverse_transform

    if not fit.get("applied", True):
        return np.asarray(samples, dtype=np.float32).copy()
    transformed = record.to_transformed(np.asarray(samples, dtype=np.float64))
    filtered = power_law_filter(transformed, float(fit["c"]), float(fit["delta"])).astype(np.float64)
    calibrated, _ = record.to_normalized(inverse_transform(filtered, record.transform, record.params))
    return calibrated


def calibrate_spectrum(samples, reference_physical, record, gate: float = 2.0) -> tuple[np.ndarray, dict]:
    """:func:`fit_calibration` and :func:`apply_calibration` of one set: the samples whose set-mean
    spectrum has the reference maps' power-law level and tilt (when that tilt is beyond ``gate``
    null standard deviations), and the fit."""
    fit = fit_calibration(samples, reference_physical, record, gate)
    return apply_calibration(samples, fit, record), fit
