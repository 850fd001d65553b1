"""Synthetic radiation-field maps (FITS and HDF5, G0 in Habing units).

The paper's radiation-field maps (Xu et al. 2023, STARFORGE) are not public; these share
the statistics the pipeline later measures. The gas column density of a molecular cloud
is log-normal with a power-law power spectrum; an external interstellar field is
attenuated by dust (A_V from the Bohlin relation) and a few young stars, born where the
gas is dense, light up their surroundings with an inverse-square field that the local
gas partly shields. The FITS maps carry a celestial WCS near the Orion Nebula.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..store import atomic_path, sha256_file
from ._common import (
    _STREAM_FITS,
    _STREAM_HDF5,
    _as_generator,
    _check_count,
    _check_seed,
    _check_shape,
    _write_json,
)

__all__ = [
    "HABING_ERG_S_CM2",
    "gaussian_random_field",
    "molecular_cloud_column",
    "radiation_field_map",
    "write_radiation_demo",
]

HABING_ERG_S_CM2 = 1.6e-3
"""1 Habing (G0 = 1) in erg s^-1 cm^-2 of 6-13.6 eV FUV flux (Habing 1968)."""

BOHLIN_NH_PER_AV_CM2 = 1.87e21
"""N_H / A_V in cm^-2 mag^-1 (Bohlin, Savage & Drake 1978, for R_V = 3.1)."""

FUV_TAU_PER_AV = 1.9
"""FUV dust optical depth per magnitude of A_V, the usual PDR-model attenuation exp(-1.9 A_V)."""

ORION_RA_DEG = 83.82
ORION_DEC_DEG = -5.39
DEMO_DISTANCE_PC = 400.0
DEMO_PIXEL_PC = 0.05


def gaussian_random_field(shape: tuple[int, int], slope: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance, periodic 2-D Gaussian random field with P(k) ∝ k^slope.

    White noise is filtered in Fourier space by sqrt(P(k)); the k = 0 mode is removed.

    Parameters
    ----------
    shape : tuple of int
        (ny, nx) in pixels, each at least 2.
    slope : float
        Power-law index of the isotropic power spectrum (dimensionless), e.g. -3.3 for a
        molecular cloud. Wavenumbers are measured in cycles per pixel, so the spectrum is
        isotropic on the pixel grid for any aspect ratio.
    rng : numpy.random.Generator
        Source of the white noise; it advances by ny * nx normal draws.

    Returns
    -------
    numpy.ndarray
        float64 array of shape (ny, nx), dimensionless, with sample mean 0 and sample
        standard deviation 1.
    """
    ny, nx = _check_shape(shape)
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.rfftfreq(nx)[None, :]
    k = np.hypot(kx, ky)
    amplitude = np.zeros_like(k)
    nonzero = k > 0
    amplitude[nonzero] = k[nonzero] ** (0.5 * float(slope))
    white = rng.standard_normal((ny, nx))
    field = np.fft.irfft2(np.fft.rfft2(white) * amplitude, s=(ny, nx))
    # The zeroed k = 0 mode already makes the mean vanish; subtracting removes round-off.
    field -= field.mean()
    # Normalise this realisation, not the ensemble: a steep spectrum puts most variance in
    # a few large-scale modes, so the ensemble variance would vary a lot from map to map.
    return field / field.std()


def molecular_cloud_column(
    shape: tuple[int, int],
    slope: float,
    sigma_ln: float,
    mean_column_cm2: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Log-normal hydrogen column density map of a molecular cloud.

    N_H = mean * exp(sigma_ln * g - sigma_ln**2 / 2), with ``g`` a unit Gaussian random
    field, so that the expected mean of N_H is ``mean_column_cm2`` and ln N_H has the
    power spectrum slope of ``g``.

    Parameters
    ----------
    shape : tuple of int
        (ny, nx) in pixels.
    slope : float
        Power-spectrum slope of ln N_H (dimensionless).
    sigma_ln : float
        Standard deviation of ln N_H (dimensionless, >= 0); about 0.3-1.5 in observed clouds.
    mean_column_cm2 : float
        Expected mean column density in cm^-2 (> 0).
    rng : numpy.random.Generator
        Random source.

    Returns
    -------
    numpy.ndarray
        float64 array (ny, nx) of N_H in cm^-2, strictly positive.
    """
    if not sigma_ln >= 0:
        raise ValueError(f"sigma_ln must be >= 0, got {sigma_ln!r}")
    if not mean_column_cm2 > 0:
        raise ValueError(f"mean_column_cm2 must be > 0 cm^-2, got {mean_column_cm2!r}")
    g = gaussian_random_field(shape, slope, rng)
    return float(mean_column_cm2) * np.exp(sigma_ln * g - 0.5 * sigma_ln**2)


def radiation_field_map(
    shape: tuple[int, int],
    slope: float = -3.3,
    sigma_ln: float = 1.0,
    mean_column_cm2: float = 3e21,
    n_stars: int = 3,
    g0_external: float = 1.0,
    star_g0_at_1pc: tuple[float, float] = (1e3, 1e4),
    pixel_pc: float = DEMO_PIXEL_PC,
    rng: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, np.ndarray, list[tuple[float, float, float]]]:
    """FUV radiation-field strength G0 across a synthetic molecular cloud.

    G0 = g0_external * exp(-1.9 A_V) + sum over stars of
    g0_at_1pc * (1 pc)^2 / (r^2 + r_soft^2) * exp(-1.9 A_V / 2), with A_V = N_H / 1.87e21
    cm^-2 the extinction through the cloud at each pixel, r the projected distance to the
    star in pc and r_soft one pixel. A star sees on average half the column of the gas it
    illuminates, hence A_V / 2.

    With the defaults on a 256 x 256 map (12.8 pc across) the median G0 is ~1e2 Habing,
    the 1st-99th percentiles ~0.05-1e4, and the extremes ~1e-5 (dense cores far from the
    stars) to ~1e6 (a star's own pixel): a log transform is the natural normalisation.

    Parameters
    ----------
    shape : tuple of int
        (ny, nx) in pixels.
    slope : float
        Power-spectrum slope of ln N_H (dimensionless).
    sigma_ln : float
        Standard deviation of ln N_H (dimensionless).
    mean_column_cm2 : float
        Mean hydrogen column density in cm^-2.
    n_stars : int
        Number of embedded stars (>= 0).
    g0_external : float
        Unattenuated external interstellar field in Habing (> 0).
    star_g0_at_1pc : tuple of float
        (low, high) range, in Habing, of each star's field at 1 pc; drawn log-uniformly.
    pixel_pc : float
        Pixel size in pc.
    rng : numpy.random.Generator or int or None
        Random source, or a seed for ``numpy.random.default_rng`` (None means seed 0).

    Returns
    -------
    g0 : numpy.ndarray
        float64 (ny, nx) radiation field in Habing, strictly positive and finite.
    column : numpy.ndarray
        float64 (ny, nx) hydrogen column density in cm^-2.
    stars : list of tuple of float
        One (x_pix, y_pix, g0_at_1pc) per star: 0-based pixel coordinates (x along
        columns, y along rows, pixel centres at integers) and the field at 1 pc in Habing.
    """
    rng = _as_generator(rng)
    n_stars = _check_count(n_stars, "n_stars")
    if not g0_external > 0:
        raise ValueError(f"g0_external must be > 0 Habing, got {g0_external!r}")
    if not pixel_pc > 0:
        raise ValueError(f"pixel_pc must be > 0 pc, got {pixel_pc!r}")
    g0_low, g0_high = (float(v) for v in star_g0_at_1pc)
    if not 0 < g0_low <= g0_high < math.inf:
        raise ValueError(f"star_g0_at_1pc must be 0 < low <= high < inf Habing, got {star_g0_at_1pc!r}")

    column = molecular_cloud_column(shape, slope, sigma_ln, mean_column_cm2, rng)
    ny, nx = column.shape
    a_v = column / BOHLIN_NH_PER_AV_CM2
    g0 = g0_external * np.exp(-FUV_TAU_PER_AV * a_v)

    # Stars form where the gas is dense: birth pixel drawn with probability ∝ N_H, then a
    # uniform offset inside that pixel so positions are not locked to the grid.
    birth = rng.choice(column.size, size=n_stars, p=(column / column.sum()).ravel())
    offsets = rng.uniform(-0.5, 0.5, size=(n_stars, 2))
    g0_at_1pc = np.exp(rng.uniform(math.log(g0_low), math.log(g0_high), size=n_stars))

    y, x = np.ogrid[:ny, :nx]
    shielding = np.exp(-0.5 * FUV_TAU_PER_AV * a_v)
    r_soft_pc2 = pixel_pc**2
    stars: list[tuple[float, float, float]] = []
    for flat_index, (dy, dx), g0_star in zip(birth, offsets, g0_at_1pc):
        row, col = divmod(int(flat_index), nx)
        x_star, y_star = col + dx, row + dy
        r2_pc2 = ((x - x_star) ** 2 + (y - y_star) ** 2) * pixel_pc**2
        # Softening by one pixel keeps the star's own pixel finite (its flux is spread over it).
        g0 = g0 + g0_star / (r2_pc2 + r_soft_pc2) * shielding
        stars.append((float(x_star), float(y_star), float(g0_star)))
    return g0, column, stars


def write_radiation_demo(
    out_dir: str | os.PathLike,
    n_fits: int,
    n_hdf5: int,
    size: int,
    slope: float,
    n_stars: int,
    seed: int,
) -> dict:
    """Write synthetic radiation-field maps as FITS images and one HDF5 stack.

    Layout under ``out_dir`` (created if needed)::

        fits/cloud_000.fits ...  G0 in Habing, float32, one map per file, shared WCS
        stack.h5                 datasets G0 (Habing) and column_density (cm-2),
                                 float32 (n_hdf5, size, size), different draws
        manifest.json            what was written and how

    FITS map ``i`` uses ``default_rng([seed, 0, i])`` and HDF5 map ``j`` uses
    ``default_rng([seed, 1, j])``, so every map is reproducible regardless of how many
    are written. Each file is written under a temporary name and renamed.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Output directory.
    n_fits : int
        Number of FITS maps (>= 0).
    n_hdf5 : int
        Number of maps in ``stack.h5`` (>= 0).
    size : int
        Map side in pixels (>= 2); pixels are 0.05 pc at 400 pc.
    slope : float
        Power-spectrum slope of ln N_H (dimensionless).
    n_stars : int
        Embedded stars per map (>= 0).
    seed : int
        Non-negative integer seed.

    Returns
    -------
    dict
        The manifest (also written to ``manifest.json``): ``files`` (paths relative to
        ``out_dir``), ``seed``, ``slope``, ``size``, ``shapes``, ``units``, per-map star
        lists and SHA-256 digests.
    """
    import astropy.io.fits as fits
    import h5py

    seed = _check_seed(seed)
    n_fits = _check_count(n_fits, "n_fits")
    n_hdf5 = _check_count(n_hdf5, "n_hdf5")
    size = _check_shape((size, size))[0]
    out = Path(out_dir)
    (out / "fits").mkdir(parents=True, exist_ok=True)

    wcs_header = _orion_wcs(size, DEMO_PIXEL_PC, DEMO_DISTANCE_PC).to_header()
    fits_entries = []
    for i in range(n_fits):
        rng = np.random.default_rng([seed, _STREAM_FITS, i])
        g0, _, stars = radiation_field_map((size, size), slope=slope, n_stars=n_stars, rng=rng)
        header = fits.Header()
        header.extend(wcs_header.cards)
        header["BUNIT"] = ("Habing", "G0; 1 Habing = 1.6e-3 erg s-1 cm-2")
        header["OBJECT"] = (f"synthetic cloud {i:03d}", "discoverydiff demo")
        header["SLOPE"] = (float(slope), "power-spectrum slope of ln N_H")
        header["SEED"] = (seed, "demo seed; rng = default_rng([SEED, 0, MAPIDX])")
        header["MAPIDX"] = (i, "map index")
        header["NSTARS"] = (n_stars, "embedded stars")
        header["DISTPC"] = (DEMO_DISTANCE_PC, "[pc] assumed distance")
        header["PIXPC"] = (DEMO_PIXEL_PC, "[pc] pixel size")
        header["ORIGIN"] = "discoverydiff.demo"
        relative = f"fits/cloud_{i:03d}.fits"
        with atomic_path(out / relative) as tmp:
            fits.PrimaryHDU(data=_to_float32_positive(g0), header=header).writeto(tmp)
        fits_entries.append({"path": relative, "shape": [size, size], "stars": [list(s) for s in stars]})

    g0_stack = np.empty((n_hdf5, size, size), dtype=np.float32)
    column_stack = np.empty((n_hdf5, size, size), dtype=np.float32)
    hdf5_stars = []
    for j in range(n_hdf5):
        rng = np.random.default_rng([seed, _STREAM_HDF5, j])
        g0, column, stars = radiation_field_map((size, size), slope=slope, n_stars=n_stars, rng=rng)
        g0_stack[j] = _to_float32_positive(g0)
        column_stack[j] = column
        hdf5_stars.append([list(s) for s in stars])
    with atomic_path(out / "stack.h5") as tmp:
        # track_times=False: HDF5 would otherwise stamp creation times and break bitwise reproducibility.
        with h5py.File(tmp, "w") as h5:
            dset = h5.create_dataset("G0", data=g0_stack, track_times=False)
            dset.attrs["units"] = "Habing"
            dset = h5.create_dataset("column_density", data=column_stack, track_times=False)
            dset.attrs["units"] = "cm-2"
            h5.attrs["seed"] = seed
            h5.attrs["slope"] = float(slope)
            h5.attrs["n_stars"] = n_stars
            h5.attrs["pixel_pc"] = DEMO_PIXEL_PC
            h5.attrs["distance_pc"] = DEMO_DISTANCE_PC
            h5.attrs["origin"] = "discoverydiff.demo"

    files = [entry["path"] for entry in fits_entries] + ["stack.h5"]
    manifest = {
        "kind": "radiation_field_demo",
        "generator": "discoverydiff.demo.write_radiation_demo",
        "seed": seed,
        "slope": float(slope),
        "size": size,
        "n_stars": n_stars,
        "pixel_pc": DEMO_PIXEL_PC,
        "distance_pc": DEMO_DISTANCE_PC,
        "units": {"G0": "Habing", "column_density": "cm-2"},
        "shapes": {"fits": [size, size], "G0": [n_hdf5, size, size], "column_density": [n_hdf5, size, size]},
        "fits": fits_entries,
        "hdf5": {"path": "stack.h5", "datasets": ["G0", "column_density"], "stars": hdf5_stars},
        "files": files,
        "sha256": {name: sha256_file(out / name) for name in files},
    }
    _write_json(out / "manifest.json", manifest)
    return manifest


def _orion_wcs(size: int, pixel_pc: float, distance_pc: float):
    """Celestial TAN WCS centred near the Orion Nebula with pixel_pc / distance_pc pixels."""
    from astropy.wcs import WCS

    pixel_deg = math.degrees(pixel_pc / distance_pc)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crval = [ORION_RA_DEG, ORION_DEC_DEG]
    # FITS pixels are 1-based; (size + 1) / 2 is the geometric centre.
    wcs.wcs.crpix = [(size + 1) / 2.0, (size + 1) / 2.0]
    # RA increases to the east, i.e. to the left on a sky image.
    wcs.wcs.cdelt = [-pixel_deg, pixel_deg]
    wcs.wcs.radesys = "ICRS"
    return wcs


def _to_float32_positive(g0: np.ndarray) -> np.ndarray:
    """Cast G0 to float32 keeping it strictly positive.

    Deep inside dense cores exp(-1.9 A_V) can fall below the float32 range (A_V > ~45);
    such pixels are raised to the smallest normal float32 rather than written as 0, which a
    log-space normalisation would reject.
    """
    return np.maximum(g0, np.finfo(np.float32).tiny).astype(np.float32)
