"""Synthetic stand-ins for the two target domains, so the workflow runs end to end offline.

The paper's radiation-field maps (Xu et al. 2023, STARFORGE) are not public and Galaxy
Zoo cutouts are a download away; the embedded demo instead generates inputs that share
the statistics the pipeline later measures:

* **Radiation-field maps** (FITS and HDF5, G0 in Habing units). The gas column density
  of a molecular cloud is log-normal with a power-law power spectrum; an external
  interstellar field is attenuated by dust (A_V from the Bohlin relation) and a few young
  stars, born where the gas is dense, light up their surroundings with an inverse-square
  field that the local gas partly shields.
* **Galaxy Zoo 2-like cutouts** (424x424 gri JPEGs and a Kaggle-style catalogue). A
  de Vaucouleurs bulge plus an exponential disk, blurred by a Gaussian PSF, with sky noise,
  field stars and an asinh (Lupton et al. 2004) colour stretch.

Every map and image ``i`` is a pure function of ``(seed, i)``: its generator is
``numpy.random.default_rng([seed, stream, i])``, so adding maps never changes earlier ones
and the same seed gives bitwise-equal files.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage, special

from .store import sha256_file

__all__ = [
    "HABING_ERG_S_CM2",
    "gaussian_random_field",
    "molecular_cloud_column",
    "radiation_field_map",
    "write_radiation_demo",
    "sersic_bn",
    "sersic_image",
    "galaxy_cutout",
    "write_galaxy_demo",
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

# Independent random streams, so FITS maps, HDF5 maps and galaxies never share draws.
_STREAM_FITS = 0
_STREAM_HDF5 = 1
_STREAM_GALAXY = 2

# SDSS-like colours as relative flux in (g, r, i): an old, red bulge (g-r ~ 0.8 mag,
# r-i ~ 0.4 mag) and a younger, bluer disk (g-r ~ 0.3 mag, r-i ~ 0.15 mag).
_BULGE_GRI = np.array([0.48, 1.0, 1.45])
_DISK_GRI = np.array([0.76, 1.0, 1.15])
# Per-band display scales for the (i, r, g) -> (R, G, B) composite, chosen so a typical
# galaxy comes out near white, as in the SDSS gri images Galaxy Zoo used.
_DISPLAY_SCALE_IRG = np.array([0.75, 1.0, 1.35])
_GZ2_CUTOUT_SIZE = 424
_SERSIC_CORE_PIX = 0.05  # semi-major axis of the analytically integrated core, pixels
_SERSIC_REFINE = 15  # extra sub-pixel factor in the central block
_SERSIC_REFINE_HALF = 2  # the central block is (2 * 2 + 1)^2 pixels
_PSF_SIGMA_AT_424_PIX = 1.5
_GALAXY_PARAM_KEYS = (
    "bulge_to_total",
    "inclination_deg",
    "position_angle_deg",
    "r_eff_disk_pix",
    "r_eff_bulge_pix",
    "n_stars",
)
# asinh stretch in units of the sky noise: linear below 3 sigma, full scale at 2000 sigma.
_ASINH_SOFTENING_SKY = 3.0
_ASINH_SATURATION_SKY = 2000.0


# --------------------------------------------------------------------------------------
# Molecular clouds and radiation fields
# --------------------------------------------------------------------------------------


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
        with _atomic_path(out / relative) as tmp:
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
    with _atomic_path(out / "stack.h5") as tmp:
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


# --------------------------------------------------------------------------------------
# Galaxies
# --------------------------------------------------------------------------------------


def sersic_bn(n: float) -> float:
    """Sersic b_n, for which R_e encloses half the light.

    Ciotti & Bertin (1999) asymptotic expansion. Against the exact root of
    P(2n, b_n) = 1/2 its relative error is below 4e-4 for n >= 0.36, 3e-5 for n >= 1 and
    1e-7 for n >= 4; it degrades fast below n = 0.36 (0.2% at n = 0.3, 10% at n = 0.2).

    Parameters
    ----------
    n : float
        Sersic index (dimensionless, > 0).

    Returns
    -------
    float
        b_n (dimensionless); about 1.678 for n = 1 and 7.669 for n = 4.
    """
    n = float(n)
    if not n > 0:
        raise ValueError(f"Sersic index must be > 0, got {n!r}")
    return (
        2.0 * n
        - 1.0 / 3.0
        + 4.0 / (405.0 * n)
        + 46.0 / (25515.0 * n**2)
        + 131.0 / (1148175.0 * n**3)
        - 2194697.0 / (30690717750.0 * n**4)
    )


def sersic_image(
    shape: tuple[int, int],
    x0: float,
    y0: float,
    r_eff_pix: float,
    n: float,
    axis_ratio: float,
    position_angle_rad: float,
    total_flux: float,
    oversample: int = 3,
) -> np.ndarray:
    """Pixel-integrated elliptical Sersic profile.

    I(R) = I_e exp(-b_n ((R / R_e)^(1/n) - 1)), with R the elliptical radius in the
    semi-major-axis convention, R^2 = a^2 + (b / q)^2 for offsets a, b along the major and
    minor axes. I_e is set from the analytic total 2 pi n I_e R_e^2 q e^{b_n} Gamma(2n) /
    b_n^{2n}, so the image sums to ``total_flux`` minus the light falling outside it.

    Each pixel is averaged over ``oversample`` x ``oversample`` sub-pixels; the 5 x 5
    pixels around the centre, where a high-n profile is too cuspy for that, over 15 times
    finer sub-pixels; and the light inside a core ellipse of semi-major axis 0.05 pixel is
    added analytically, from the enclosed-flux fraction P(2n, b_n (R / R_e)^(1/n)), to the
    pixel holding the centre. With the default ``oversample`` the pixel sum is within
    0.5% of the light inside the image even for n = 4 and R_e = 0.5 pixel.

    Parameters
    ----------
    shape : tuple of int
        (ny, nx) in pixels.
    x0, y0 : float
        Centre in 0-based pixel coordinates (x along columns, y along rows; pixel centres
        at integers).
    r_eff_pix : float
        Effective (half-light) semi-major axis R_e in pixels (> 0).
    n : float
        Sersic index (> 0); 1 exponential disk, 4 de Vaucouleurs.
    axis_ratio : float
        Minor-to-major axis ratio q in (0, 1].
    position_angle_rad : float
        Angle of the major axis in radians, from the +x axis towards +y.
    total_flux : float
        Total flux of the untruncated profile, in the caller's flux unit.
    oversample : int
        Sub-pixels per pixel side (>= 1).

    Returns
    -------
    numpy.ndarray
        float64 (ny, nx) flux per pixel, in the unit of ``total_flux``.
    """
    ny, nx = _check_shape(shape, minimum=1)
    if not r_eff_pix > 0:
        raise ValueError(f"r_eff_pix must be > 0 pixels, got {r_eff_pix!r}")
    if not 0 < axis_ratio <= 1:
        raise ValueError(f"axis_ratio must be in (0, 1], got {axis_ratio!r}")
    oversample = _check_count(oversample, "oversample")
    if oversample < 1:
        raise ValueError("oversample must be >= 1")
    b_n = sersic_bn(n)
    # The analytic total in log space: e^{b_n} and Gamma(2n) overflow separately for large n.
    log_total_per_ie = (
        math.log(2.0 * math.pi * n * r_eff_pix**2 * axis_ratio)
        + b_n
        + special.gammaln(2.0 * n)
        - 2.0 * n * math.log(b_n)
    )
    i_e = total_flux * math.exp(-log_total_per_ie)
    cos_pa, sin_pa = math.cos(position_angle_rad), math.sin(position_angle_rad)

    # The n > 1 cusp is too steep for any sub-pixel grid at the very centre: the light
    # inside a tiny core ellipse comes from the analytic enclosed flux instead, and the
    # sub-pixel samples skip that ellipse.
    core_radius = _SERSIC_CORE_PIX / r_eff_pix

    def mean_over_subpixels(rows: np.ndarray, cols: np.ndarray, factor: int) -> np.ndarray:
        offsets = (np.arange(factor) + 0.5) / factor - 0.5
        acc = np.zeros((rows.size, cols.size))
        dy0 = rows[:, None] - y0
        dx0 = cols[None, :] - x0
        for oy in offsets:
            for ox in offsets:
                dx = dx0 + ox
                dy = dy0 + oy
                major = dx * cos_pa + dy * sin_pa
                minor = (-dx * sin_pa + dy * cos_pa) / axis_ratio
                radius = np.sqrt(major**2 + minor**2) / r_eff_pix
                acc += np.where(radius >= core_radius, np.exp(-b_n * (radius ** (1.0 / n) - 1.0)), 0.0)
        return acc / factor**2

    image = i_e * mean_over_subpixels(np.arange(ny, dtype=float), np.arange(nx, dtype=float), oversample)

    # Around the core the profile still changes by orders of magnitude across one pixel
    # (n = 4: a factor ~100 within 0.1 R_e), so refine a 5 x 5 block.
    # (5 x 5 for a centre on a pixel; 6 wide, still symmetric, for a centre on a pixel edge)
    r_lo = max(math.floor(y0) - _SERSIC_REFINE_HALF, 0)
    r_hi = min(math.ceil(y0) + _SERSIC_REFINE_HALF + 1, ny)
    c_lo = max(math.floor(x0) - _SERSIC_REFINE_HALF, 0)
    c_hi = min(math.ceil(x0) + _SERSIC_REFINE_HALF + 1, nx)
    if r_lo < r_hi and c_lo < c_hi:
        image[r_lo:r_hi, c_lo:c_hi] = i_e * mean_over_subpixels(
            np.arange(r_lo, r_hi, dtype=float), np.arange(c_lo, c_hi, dtype=float), _SERSIC_REFINE * oversample
        )
    # The core ellipse is 0.1 px across; share its light among the pixels its extent
    # overlaps, so a centre on a pixel edge or corner stays centred (a whole core dropped
    # into the pixel at round(x0) would sit 0.5 px off and bias Sersic fits high).
    core_flux = total_flux * special.gammainc(2.0 * n, b_n * core_radius ** (1.0 / n))
    rows, row_w = _overlap_weights(y0, _SERSIC_CORE_PIX, ny)
    cols, col_w = _overlap_weights(x0, _SERSIC_CORE_PIX, nx)
    if rows.size and cols.size:
        image[np.ix_(rows, cols)] += core_flux * np.outer(row_w, col_w)
    return image


def _overlap_weights(centre: float, half_width: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (centres on integers) overlapped by [centre - half_width, centre + half_width], and the
    fraction of the interval in each; pixels outside the image are dropped."""
    first, last = int(np.floor(centre - half_width + 0.5)), int(np.floor(centre + half_width + 0.5))
    pixels = np.arange(first, last + 1)
    lo = np.maximum(pixels - 0.5, centre - half_width)
    hi = np.minimum(pixels + 0.5, centre + half_width)
    weights = np.clip(hi - lo, 0.0, None) / (2.0 * half_width)
    inside = (pixels >= 0) & (pixels < n)
    return pixels[inside], weights[inside]


def galaxy_cutout(
    size: int = _GZ2_CUTOUT_SIZE,
    rng: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, dict]:
    """A Galaxy Zoo 2-like gri colour cutout of a bulge + disk galaxy.

    The galaxy is a de Vaucouleurs (n = 4) red bulge plus an exponential (n = 1) bluer
    disk, centred, scaled so that the radius enclosing 90% of the light is 10-14% of the
    cutout side (GZ2 cutouts span about 8.5 Petrosian R90, so the galaxy fills the central
    ~207 of 424 pixels). It is blurred by a Gaussian PSF (sigma 1.5 px at 424 px, scaled
    with ``size``), joined by 0-4 field stars away from the centre, given Gaussian sky
    noise, and displayed with an asinh stretch, channels (R, G, B) = (i, r, g).

    Parameters
    ----------
    size : int
        Cutout side in pixels (>= 16); 424 as in the Kaggle GZ2 images.
    rng : numpy.random.Generator or int or None
        Random source, or a seed for ``numpy.random.default_rng`` (None means seed 0).

    Returns
    -------
    image : numpy.ndarray
        uint8 (size, size, 3) RGB image.
    params : dict
        True parameters: ``bulge_to_total`` (r-band light fraction in [0, 1]),
        ``inclination_deg`` (disk inclination, 0 face-on), ``position_angle_deg`` (major
        axis from +x towards +y, in [0, 180)), ``r_eff_disk_pix`` and ``r_eff_bulge_pix``
        (half-light semi-major axes in pixels), ``n_stars`` (field stars).
    """
    rng = _as_generator(rng)
    size = _check_count(size, "size")
    if size < 16:
        raise ValueError(f"galaxy cutouts need size >= 16 pixels, got {size}")

    bulge_to_total = float(rng.uniform(0.0, 1.0))
    # Random orientation in 3-D: cos(i) uniform.
    cos_i = float(rng.uniform(0.0, 1.0))
    inclination_deg = math.degrees(math.acos(cos_i))
    # Real disks have a finite thickness, so even edge-on ones are not thinner than ~0.15.
    q_disk = max(cos_i, 0.15)
    # Bulges are rounder than their disks.
    q_bulge = 1.0 - 0.4 * (1.0 - q_disk)
    position_angle = float(rng.uniform(0.0, math.pi))
    r90 = size * float(rng.uniform(0.10, 0.14))
    # R90 / R_e is 2.32 for an exponential disk and about 5.5 for a de Vaucouleurs bulge.
    r_eff_disk = r90 / 2.32
    r_eff_bulge = r90 / 5.5 * float(rng.uniform(0.5, 1.0))
    x0 = (size - 1) / 2.0 + float(rng.uniform(-1.0, 1.0))
    y0 = (size - 1) / 2.0 + float(rng.uniform(-1.0, 1.0))
    # Units: total r-band galaxy flux = 1.
    sky_sigma = float(rng.uniform(0.02, 0.06)) / (math.pi * r90**2)
    psf_sigma = max(_PSF_SIGMA_AT_424_PIX * size / _GZ2_CUTOUT_SIZE, 0.5)

    flux_gri = np.zeros((3, size, size))
    if bulge_to_total > 0:
        bulge = sersic_image((size, size), x0, y0, r_eff_bulge, 4.0, q_bulge, position_angle, bulge_to_total)
        flux_gri += _BULGE_GRI[:, None, None] * bulge
    if bulge_to_total < 1:
        disk = sersic_image((size, size), x0, y0, r_eff_disk, 1.0, q_disk, position_angle, 1.0 - bulge_to_total)
        flux_gri += _DISK_GRI[:, None, None] * disk

    n_stars = int(rng.integers(0, 5))
    for _ in range(n_stars):
        x_star, y_star = _field_star_position(size, x0, y0, r90, rng)
        star_flux = math.exp(rng.uniform(math.log(0.02), math.log(0.5)))
        # Stellar g-r from ~0.2 (F stars) to ~1.4 mag (M dwarfs); r-i follows roughly half of it.
        g_r = float(rng.uniform(0.2, 1.4))
        star_gri = star_flux * np.array([10 ** (-0.4 * g_r), 1.0, 10 ** (0.2 * g_r)])
        _deposit_point(flux_gri, x_star, y_star, star_gri)

    for band in range(3):
        flux_gri[band] = ndimage.gaussian_filter(flux_gri[band], psf_sigma, mode="constant")
    flux_gri += rng.normal(0.0, sky_sigma, size=flux_gri.shape)

    image = _asinh_rgb(
        flux_gri[::-1] * _DISPLAY_SCALE_IRG[:, None, None],
        _ASINH_SOFTENING_SKY * sky_sigma,
        _ASINH_SATURATION_SKY * sky_sigma,
    )
    params = {
        "bulge_to_total": bulge_to_total,
        "inclination_deg": inclination_deg,
        "position_angle_deg": math.degrees(position_angle),
        "r_eff_disk_pix": r_eff_disk,
        "r_eff_bulge_pix": r_eff_bulge,
        "n_stars": n_stars,
    }
    return image, params


def write_galaxy_demo(out_dir: str | os.PathLike, n: int, size: int, seed: int) -> dict:
    """Write Galaxy Zoo 2 Kaggle-style JPEG cutouts and a vote-fraction catalogue.

    Layout under ``out_dir`` (created if needed)::

        images/100000.jpg ...  RGB JPEG (quality 92), one per galaxy, named by GalaxyID
        catalogue.csv          GalaxyID, Class1.1, Class1.2, Class1.3, true parameters
        manifest.json          what was written and how

    Class1.1/1.2/1.3 are the Galaxy Zoo 2 question-1 vote fractions (smooth, features or
    disk, star or artifact); they sum to 1. Smooth votes rise with bulge-to-total ratio,
    edge-on disks draw "features or disk" votes, and each galaxy gets some vote noise.
    Galaxy ``i`` (GalaxyID 100000 + i) uses ``default_rng([seed, 2, i])`` for both its
    image and its votes.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Output directory.
    n : int
        Number of galaxies (>= 0).
    size : int
        Cutout side in pixels (>= 16); 424 as in the Kaggle GZ2 images.
    seed : int
        Non-negative integer seed.

    Returns
    -------
    dict
        The manifest (also written to ``manifest.json``): ``files`` (relative paths),
        ``seed``, ``n``, ``size``, ``shape``, ``columns`` and SHA-256 digests.
    """
    import pandas as pd
    from PIL import Image

    seed = _check_seed(seed)
    n = _check_count(n, "n")
    size = _check_count(size, "size")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)

    rows = []
    images = []
    for i in range(n):
        rng = np.random.default_rng([seed, _STREAM_GALAXY, i])
        image, params = galaxy_cutout(size, rng)
        galaxy_id = 100000 + i
        relative = f"images/{galaxy_id}.jpg"
        with _atomic_path(out / relative) as tmp:
            # A (size, size, 3) uint8 array is RGB to Pillow.
            Image.fromarray(image).save(tmp, format="JPEG", quality=92)
        images.append(relative)
        smooth, features, artifact = _gz2_class1_fractions(params, rng)
        rows.append({"GalaxyID": galaxy_id, "Class1.1": smooth, "Class1.2": features, "Class1.3": artifact, **params})

    columns = ["GalaxyID", "Class1.1", "Class1.2", "Class1.3", *_GALAXY_PARAM_KEYS]
    catalogue = pd.DataFrame(rows, columns=columns)
    with _atomic_path(out / "catalogue.csv") as tmp:
        catalogue.to_csv(tmp, index=False)

    files = images + ["catalogue.csv"]
    manifest = {
        "kind": "galaxy_zoo_demo",
        "generator": "discoverydiff.demo.write_galaxy_demo",
        "seed": seed,
        "n": n,
        "size": size,
        "shape": [size, size, 3],
        "images": images,
        "catalogue": "catalogue.csv",
        "columns": columns,
        "files": files,
        "sha256": {name: sha256_file(out / name) for name in files},
    }
    _write_json(out / "manifest.json", manifest)
    return manifest


def _gz2_class1_fractions(params: dict, rng: np.random.Generator) -> tuple[float, float, float]:
    """Plausible GZ2 question-1 vote fractions (smooth, features/disk, star/artifact)."""
    bulge_to_total = params["bulge_to_total"]
    edge_on = 1.0 - math.cos(math.radians(params["inclination_deg"]))
    # Volunteers call bulge-dominated galaxies smooth; a visible disk, especially edge-on,
    # pulls votes to "features or disk". The normal term stands in for volunteer scatter.
    logit = 7.0 * (bulge_to_total - 0.5) - 2.0 * edge_on * (1.0 - bulge_to_total) + rng.normal(0.0, 0.5)
    p_smooth = 1.0 / (1.0 + math.exp(-logit))
    # A few percent of votes go to "star or artifact", more with field stars in the frame.
    artifact = float(rng.uniform(0.0, 0.02)) + 0.005 * params["n_stars"]
    smooth = (1.0 - artifact) * p_smooth
    return smooth, 1.0 - artifact - smooth, artifact


def _field_star_position(size: int, x0: float, y0: float, r90: float, rng: np.random.Generator) -> tuple[float, float]:
    """A random star position at least ~1.5 R90 from the galaxy and 3 px from the edges."""
    margin = 3.0
    min_distance = 1.5 * r90
    for _ in range(1000):
        x, y = rng.uniform(margin, size - 1 - margin, size=2)
        if math.hypot(x - x0, y - y0) >= min_distance:
            return float(x), float(y)
    # Tiny cutouts may have no room; a corner is then the farthest place from the galaxy.
    return margin, margin


def _deposit_point(flux: np.ndarray, x: float, y: float, amplitude: np.ndarray) -> None:
    """Add a point source to (bands, ny, nx) ``flux`` by bilinear sharing among 4 pixels."""
    col, row = int(math.floor(x)), int(math.floor(y))
    fx, fy = x - col, y - row
    for dr, wy in ((0, 1.0 - fy), (1, fy)):
        for dc, wx in ((0, 1.0 - fx), (1, fx)):
            if 0 <= row + dr < flux.shape[1] and 0 <= col + dc < flux.shape[2]:
                flux[:, row + dr, col + dc] += amplitude * (wx * wy)


def _asinh_rgb(rgb: np.ndarray, softening: float, saturation: float) -> np.ndarray:
    """Lupton et al. (2004) asinh colour stretch of (3, ny, nx) fluxes to (ny, nx, 3) uint8.

    Every channel of a pixel is multiplied by the same asinh(I / softening) / I, with I the
    mean of the channels, so colours survive the stretch: linear below ``softening`` (a
    dark, grainy sky), logarithmic above it, reaching full scale at I = ``saturation``.
    """
    intensity = rgb.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # asinh(I/s)/I tends to 1/s as I -> 0; use that where noise makes I <= 0.
        factor = np.where(intensity > 0, np.arcsinh(intensity / softening) / intensity, 1.0 / softening)
    scaled = np.clip(rgb, 0.0, None) * factor / np.arcsinh(saturation / softening)
    # Divide by the brightest channel where it exceeds full scale, so saturated cores keep their hue.
    scaled = scaled / np.maximum(scaled.max(axis=0), 1.0)
    return np.round(255.0 * np.moveaxis(scaled, 0, -1)).astype(np.uint8)


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def _as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """The Generator itself, or a new one seeded by ``rng`` (None means seed 0)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def _check_shape(shape: Sequence[int], minimum: int = 2) -> tuple[int, int]:
    if len(shape) != 2:
        raise ValueError(f"shape must be (ny, nx), got {shape!r}")
    ny, nx = (_check_count(v, "shape") for v in shape)
    if ny < minimum or nx < minimum:
        raise ValueError(f"shape must be at least {minimum} x {minimum} pixels, got {shape!r}")
    return ny, nx


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _check_seed(seed) -> int:
    return _check_count(seed, "seed")


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """Yield a hidden temporary path next to ``path``; rename it onto ``path`` on success.

    A killed job then never leaves a file that looks complete.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_json(path: Path, payload: dict) -> None:
    with _atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")

