"""Synthetic Galaxy Zoo 2-like cutouts (424x424 gri JPEGs and a Kaggle-style catalogue).

Galaxy Zoo cutouts are a download away; these stand in for them offline. A de Vaucouleurs
bulge plus an exponential disk (pixel-integrated Sersic profiles), blurred by a Gaussian
PSF, with sky noise, field stars and an asinh (Lupton et al. 2004) colour stretch; the
catalogue holds question-1 vote fractions and the true parameters.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from scipy import ndimage, special

from ..store import atomic_path, sha256_file
from ._common import _STREAM_GALAXY, _as_generator, _check_count, _check_seed, _check_shape, _write_json

__all__ = [
    "sersic_bn",
    "sersic_image",
    "galaxy_cutout",
    "write_galaxy_demo",
]

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


def sersic_bn(n: float) -> float:
    """Sersic b_n, for which R_e encloses half the light.

    The exact root of P(2n, b_n) = 1/2, i.e. gamma(2n, b_n) = Gamma(2n) / 2 with P the
    regularised lower incomplete gamma function, from ``scipy.special.gammaincinv``.

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
    return float(special.gammaincinv(2.0 * n, 0.5))


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
        with atomic_path(out / relative) as tmp:
            # A (size, size, 3) uint8 array is RGB to Pillow.
            Image.fromarray(image).save(tmp, format="JPEG", quality=92)
        images.append(relative)
        smooth, features, artifact = _gz2_class1_fractions(params, rng)
        rows.append({"GalaxyID": galaxy_id, "Class1.1": smooth, "Class1.2": features, "Class1.3": artifact, **params})

    columns = ["GalaxyID", "Class1.1", "Class1.2", "Class1.3", *_GALAXY_PARAM_KEYS]
    catalogue = pd.DataFrame(rows, columns=columns)
    with atomic_path(out / "catalogue.csv") as tmp:
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
    # Not astropy's make_lupton_rgb: it blacks out pixels with I <= 0 (half the sky) where this keeps slope 1/softening.
    intensity = rgb.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # asinh(I/s)/I tends to 1/s as I -> 0; use that where noise makes I <= 0.
        factor = np.where(intensity > 0, np.arcsinh(intensity / softening) / intensity, 1.0 / softening)
    scaled = np.clip(rgb, 0.0, None) * factor / np.arcsinh(saturation / softening)
    # Divide by the brightest channel where it exceeds full scale, so saturated cores keep their hue.
    scaled = scaled / np.maximum(scaled.max(axis=0), 1.0)
    return np.round(255.0 * np.moveaxis(scaled, 0, -1)).astype(np.uint8)
