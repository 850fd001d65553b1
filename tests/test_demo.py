"""Tests of the synthetic demo inputs (discoverydiff.demo).

Power spectra are measured with powerbox, an implementation independent of the one that
generates the fields; Sersic normalisations are checked against the analytic enclosed
light; files are read back with astropy, h5py, Pillow and pandas.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from discoverydiff import demo

fits = pytest.importorskip("astropy.io.fits")
h5py = pytest.importorskip("h5py")
pd = pytest.importorskip("pandas")
Image = pytest.importorskip("PIL.Image")
astropy_wcs = pytest.importorskip("astropy.wcs")


def _fitted_power_slope(field: np.ndarray, k_min_cycles: float = 4.0, k_max_cycles: float = 64.0) -> float:
    """Log-log slope of the radially averaged power spectrum over k in cycles per box."""
    from powerbox import get_power

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        result = get_power(field, boxlength=1.0, ignore_zero_mode=True, bins_upto_boxlen=True, nthreads=1)
    # powerbox >= 1.0 returns a PowerSpectrum object; older versions a (power, k) tuple.
    if hasattr(result, "power"):
        power, k = result.power, result.bin_avg
    else:
        power, k = result[0], result[1]
    # powerbox's default Fourier convention (b = 1) gives angular wavenumbers, 2 pi / L per cycle.
    k_cycles = np.asarray(k) / (2.0 * np.pi)
    keep = (k_cycles >= k_min_cycles) & (k_cycles <= k_max_cycles) & np.isfinite(power) & (power > 0)
    assert keep.sum() >= 10
    slope, _ = np.polyfit(np.log(k_cycles[keep]), np.log(power[keep]), 1)
    return float(slope)


# --------------------------------------------------------------------------------------
# Gaussian random fields and column densities
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("slope", [-3.0, -3.3, -3.7])
def test_grf_power_spectrum_slope_recovered(slope):
    field = demo.gaussian_random_field((256, 256), slope, np.random.default_rng(1))
    assert field.shape == (256, 256)
    assert abs(field.mean()) < 1e-10
    assert field.std() == pytest.approx(1.0, abs=1e-10)
    assert _fitted_power_slope(field) == pytest.approx(slope, abs=0.1)


@pytest.mark.parametrize("slope", [-3.0, -3.3, -3.7])
def test_log_column_density_power_spectrum_slope_recovered(slope):
    column = demo.molecular_cloud_column((256, 256), slope, 1.0, 3e21, np.random.default_rng(2))
    assert _fitted_power_slope(np.log(column)) == pytest.approx(slope, abs=0.1)


def test_grf_non_square_and_deterministic():
    a = demo.gaussian_random_field((48, 80), -3.3, np.random.default_rng(5))
    b = demo.gaussian_random_field((48, 80), -3.3, np.random.default_rng(5))
    c = demo.gaussian_random_field((48, 80), -3.3, np.random.default_rng(6))
    assert a.shape == (48, 80)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    with pytest.raises(ValueError):
        demo.gaussian_random_field((1, 16), -3.0, np.random.default_rng(0))


def test_column_density_is_lognormal_with_requested_mean():
    mean_column, sigma_ln = 3e21, 1.0
    maps = [
        demo.molecular_cloud_column((128, 128), -3.3, sigma_ln, mean_column, np.random.default_rng(seed))
        for seed in range(6)
    ]
    assert all(np.all(m > 0) for m in maps)
    assert np.mean([m.mean() for m in maps]) == pytest.approx(mean_column, rel=0.10)
    log_maps = [np.log(m) for m in maps]
    # ln N is sigma_ln times a unit-variance field, exactly, map by map.
    for log_map in log_maps:
        assert log_map.std() == pytest.approx(sigma_ln, rel=1e-9)
    assert abs(np.mean([stats.skew(lm.ravel()) for lm in log_maps])) < 0.25


# --------------------------------------------------------------------------------------
# Radiation-field maps
# --------------------------------------------------------------------------------------


def test_radiation_map_positive_finite_and_peaked_at_stars():
    g0, column, stars = demo.radiation_field_map((128, 128), n_stars=3, rng=np.random.default_rng(3))
    assert g0.shape == column.shape == (128, 128)
    assert np.all(np.isfinite(g0)) and np.all(g0 > 0)
    assert np.all(np.isfinite(column)) and np.all(column > 0)
    assert len(stars) == 3
    y, x = np.mgrid[:128, :128]
    distance_to_nearest = np.min([np.hypot(x - xs, y - ys) for xs, ys, _ in stars], axis=0)
    near = distance_to_nearest < 3
    far = distance_to_nearest > 40
    assert near.any() and far.any()
    assert np.median(g0[near]) > 10 * np.median(g0[far])
    for _, _, g0_at_1pc in stars:
        assert 1e3 <= g0_at_1pc <= 1e4


def test_radiation_map_stars_favour_dense_gas():
    # Stars are drawn with probability proportional to N_H, so over many draws the column
    # at their birth pixels exceeds the map's mean.
    ratios = []
    for seed in range(8):
        _, column, stars = demo.radiation_field_map((64, 64), n_stars=6, rng=np.random.default_rng(seed))
        at_stars = [column[int(round(ys)) % 64, int(round(xs)) % 64] for xs, ys, _ in stars]
        ratios.append(np.mean(at_stars) / column.mean())
    assert np.mean(ratios) > 1.2


def test_radiation_map_external_field_attenuated_by_dust():
    g0, column, _ = demo.radiation_field_map((64, 64), n_stars=0, g0_external=1.0, rng=np.random.default_rng(4))
    expected = np.exp(-1.9 * column / 1.87e21)
    assert np.allclose(g0, expected, rtol=1e-12)


def test_radiation_map_deterministic_per_seed():
    first = demo.radiation_field_map((64, 64), rng=np.random.default_rng(7))
    second = demo.radiation_field_map((64, 64), rng=np.random.default_rng(7))
    other = demo.radiation_field_map((64, 64), rng=np.random.default_rng(8))
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert first[2] == second[2]
    assert not np.allclose(first[0], other[0])


def test_write_radiation_demo_files(tmp_path):
    size = 32
    manifest = demo.write_radiation_demo(tmp_path / "a", n_fits=2, n_hdf5=3, size=size, slope=-3.3, n_stars=2, seed=5)
    out = tmp_path / "a"
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["seed"] == 5 and manifest["slope"] == -3.3
    assert sorted(manifest["files"]) == ["fits/cloud_000.fits", "fits/cloud_001.fits", "stack.h5"]

    wcs_list = []
    fits_maps = []
    for name in ("fits/cloud_000.fits", "fits/cloud_001.fits"):
        with fits.open(out / name) as hdul:
            header = hdul[0].header
            data = np.array(hdul[0].data)
        assert header["BUNIT"] == "Habing"
        assert header["DISTPC"] == 400 and header["PIXPC"] == pytest.approx(0.05)
        assert header["SEED"] == 5 and header["SLOPE"] == pytest.approx(-3.3)
        # FITS stores big-endian float32 (BITPIX = -32).
        assert data.shape == (size, size) and data.dtype.kind == "f" and data.dtype.itemsize == 4
        assert header["BITPIX"] == -32
        assert np.all(np.isfinite(data)) and np.all(data > 0)
        wcs = astropy_wcs.WCS(header).celestial
        assert wcs.naxis == 2 and wcs.has_celestial
        centre = wcs.pixel_to_world((size - 1) / 2, (size - 1) / 2)
        assert centre.ra.deg == pytest.approx(83.82, abs=1e-6)
        assert centre.dec.deg == pytest.approx(-5.39, abs=1e-6)
        scales = wcs.proj_plane_pixel_scales()
        assert scales[0].to_value("deg") == pytest.approx(math.degrees(0.05 / 400.0), rel=1e-9)
        wcs_list.append(wcs.to_header_string())
        fits_maps.append(data)
    assert wcs_list[0] == wcs_list[1]
    assert not np.array_equal(fits_maps[0], fits_maps[1])

    with h5py.File(out / "stack.h5", "r") as h5:
        assert h5["G0"].shape == (3, size, size) and h5["G0"].dtype == np.float32
        assert h5["G0"].attrs["units"] == "Habing"
        assert h5["column_density"].shape == (3, size, size)
        assert h5["column_density"].attrs["units"] == "cm-2"
        stack = h5["G0"][...]
    assert np.all(stack > 0)
    # The HDF5 maps are further draws, not copies of the FITS maps.
    assert not any(np.array_equal(stack[j], fits_maps[0]) for j in range(3))

    # Same seed: byte-identical files. Fewer maps: the maps written are unchanged.
    demo.write_radiation_demo(tmp_path / "b", n_fits=2, n_hdf5=3, size=size, slope=-3.3, n_stars=2, seed=5)
    for name in manifest["files"] + ["manifest.json"]:
        assert (out / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    demo.write_radiation_demo(tmp_path / "c", n_fits=1, n_hdf5=1, size=size, slope=-3.3, n_stars=2, seed=5)
    assert (out / "fits/cloud_000.fits").read_bytes() == (tmp_path / "c/fits/cloud_000.fits").read_bytes()
    with h5py.File(tmp_path / "c/stack.h5", "r") as h5:
        assert np.array_equal(h5["G0"][0], stack[0])
    demo.write_radiation_demo(tmp_path / "d", n_fits=1, n_hdf5=0, size=size, slope=-3.3, n_stars=2, seed=6)
    assert (out / "fits/cloud_000.fits").read_bytes() != (tmp_path / "d/fits/cloud_000.fits").read_bytes()


# --------------------------------------------------------------------------------------
# Sersic profiles
# --------------------------------------------------------------------------------------


def test_sersic_bn_known_values():
    assert demo.sersic_bn(1.0) == pytest.approx(1.678, abs=1e-2)
    assert demo.sersic_bn(4.0) == pytest.approx(7.669, abs=1e-2)
    # b_n is defined by R_e enclosing half the light: P(2n, b_n) = 1/2.
    from scipy.special import gammaincinv

    for n in (0.5, 1.0, 2.5, 4.0, 6.0):
        assert demo.sersic_bn(n) == pytest.approx(gammaincinv(2 * n, 0.5), rel=5e-4)
    with pytest.raises(ValueError):
        demo.sersic_bn(0.0)


def test_sersic_bn_is_the_exact_half_light_root():
    # b_n solves gamma(2n, b_n) = Gamma(2n) / 2, i.e. the regularised P(2n, b_n) = 1/2.
    from scipy.special import gammainc, gammaincinv

    for n in np.linspace(0.2, 8.0, 40):
        b_n = demo.sersic_bn(n)
        assert b_n == pytest.approx(gammaincinv(2.0 * n, 0.5), rel=1e-12), n
        assert gammainc(2.0 * n, b_n) == pytest.approx(0.5, abs=1e-12), n


@pytest.mark.parametrize("n, r_eff, size", [(1.0, 8.0, 161), (4.0, 4.0, 257), (4.0, 1.0, 65)])
def test_sersic_total_flux(n, r_eff, size):
    centre = (size - 1) / 2 + 0.3
    image = demo.sersic_image((size, size), centre, centre - 0.4, r_eff, n, 0.7, 0.4, 250.0)
    assert np.all(image >= 0)
    assert image.sum() == pytest.approx(250.0, rel=0.03)


def test_sersic_unresolved_cusp_flux_is_accurate():
    # R_e = half a pixel, centred off the pixel grid: only sub-pixel sampling plus the
    # analytic core get the de Vaucouleurs cusp right (pixel-centre sampling is ~3% off).
    image = demo.sersic_image((129, 129), 64.37, 63.81, 0.5, 4.0, 0.7, 0.4, 250.0)
    assert image.sum() == pytest.approx(250.0, rel=0.005)


@pytest.mark.parametrize("n", [1.0, 4.0])
def test_sersic_half_light_within_r_eff(n):
    size, x0, y0, r_eff, q, pa = 256, 127.3, 128.6, 20.0, 0.6, 0.7
    image = demo.sersic_image((size, size), x0, y0, r_eff, n, q, pa, 1.0)
    y, x = np.mgrid[:size, :size]
    dx, dy = x - x0, y - y0
    major = dx * math.cos(pa) + dy * math.sin(pa)
    minor = (-dx * math.sin(pa) + dy * math.cos(pa)) / q
    inside = np.hypot(major, minor) <= r_eff
    assert image[inside].sum() == pytest.approx(0.5, abs=0.03)


def test_sersic_orientation_follows_position_angle():
    pa = math.radians(30.0)
    image = demo.sersic_image((101, 101), 50.0, 50.0, 10.0, 1.0, 0.4, pa, 1.0)
    y, x = np.mgrid[:101, :101]
    w = image / image.sum()
    cxx = np.sum(w * (x - 50.0) ** 2)
    cyy = np.sum(w * (y - 50.0) ** 2)
    cxy = np.sum(w * (x - 50.0) * (y - 50.0))
    measured = 0.5 * math.atan2(2 * cxy, cxx - cyy)
    assert math.degrees(measured) == pytest.approx(30.0, abs=1.0)
    # Second moments of an elliptical profile scale with q^2 along the minor axis.
    eigen = np.linalg.eigvalsh([[cxx, cxy], [cxy, cyy]])
    assert math.sqrt(eigen[0] / eigen[1]) == pytest.approx(0.4, abs=0.02)


# --------------------------------------------------------------------------------------
# Galaxy cutouts
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_galaxy_cutout_shape_and_bright_centre(seed):
    size = 128
    image, params = demo.galaxy_cutout(size=size, rng=np.random.default_rng(seed))
    assert image.dtype == np.uint8 and image.shape == (size, size, 3)
    assert set(params) == {
        "bulge_to_total",
        "inclination_deg",
        "position_angle_deg",
        "r_eff_disk_pix",
        "r_eff_bulge_pix",
        "n_stars",
    }
    assert 0 <= params["bulge_to_total"] <= 1 and 0 <= params["inclination_deg"] <= 90
    assert params["n_stars"] in range(5)
    brightness = image.astype(float).mean(axis=2)
    c = size // 2
    centre = brightness[c - 4 : c + 4, c - 4 : c + 4].mean()
    corners = [brightness[:8, :8], brightness[:8, -8:], brightness[-8:, :8], brightness[-8:, -8:]]
    assert centre > 100
    assert centre > 5 * max(corner.mean() for corner in corners)
    again, _ = demo.galaxy_cutout(size=size, rng=np.random.default_rng(seed))
    assert np.array_equal(image, again)


def test_galaxy_bulge_redder_than_disk():
    # Find a bulge-dominated and a disk-dominated galaxy among a few draws and compare the
    # (R = i) / (B = g) ratio of their light.
    colours = {}
    for seed in range(12):
        image, params = demo.galaxy_cutout(size=96, rng=np.random.default_rng(seed))
        core = image[40:56, 40:56].astype(float)
        colours[params["bulge_to_total"]] = core[..., 0].sum() / core[..., 2].sum()
    bt = sorted(colours)
    assert colours[bt[-1]] > colours[bt[0]]


def test_write_galaxy_demo_jpegs_and_catalogue(tmp_path):
    manifest = demo.write_galaxy_demo(tmp_path / "g", n=3, size=424, seed=9)
    out = tmp_path / "g"
    assert json.loads((out / "manifest.json").read_text()) == manifest
    jpegs = sorted((out / "images").glob("*.jpg"))
    assert [p.name for p in jpegs] == ["100000.jpg", "100001.jpg", "100002.jpg"]
    for path in jpegs:
        with Image.open(path) as img:
            assert img.format == "JPEG" and img.mode == "RGB" and img.size == (424, 424)
    catalogue = pd.read_csv(out / "catalogue.csv")
    assert list(catalogue.columns[:4]) == ["GalaxyID", "Class1.1", "Class1.2", "Class1.3"]
    assert list(catalogue["GalaxyID"]) == [100000, 100001, 100002]
    assert "bulge_to_total" in catalogue and "inclination_deg" in catalogue

    # Galaxy i depends only on (seed, i): fewer galaxies, same first image and row.
    demo.write_galaxy_demo(tmp_path / "h", n=1, size=424, seed=9)
    assert (out / "images/100000.jpg").read_bytes() == (tmp_path / "h/images/100000.jpg").read_bytes()
    first = pd.read_csv(tmp_path / "h/catalogue.csv")
    pd.testing.assert_frame_equal(first, catalogue.iloc[:1])


def test_galaxy_catalogue_vote_fractions(tmp_path):
    demo.write_galaxy_demo(tmp_path, n=30, size=48, seed=4)
    catalogue = pd.read_csv(tmp_path / "catalogue.csv")
    assert len(catalogue) == 30
    fractions = catalogue[["Class1.1", "Class1.2", "Class1.3"]].to_numpy()
    assert np.all((fractions >= 0) & (fractions <= 1))
    assert np.allclose(fractions.sum(axis=1), 1.0, atol=1e-9)
    r = np.corrcoef(catalogue["bulge_to_total"], catalogue["Class1.1"])[0, 1]
    assert r > 0.6
    # Stars and artifacts take only a small share of votes for these clean galaxy images.
    assert catalogue["Class1.3"].max() < 0.1


def test_sersic_centre_on_a_pixel_corner_stays_centred():
    # x0 = y0 = 31.5 is the corner shared by pixels 31 and 32: the light must be symmetric about it
    img = demo.sersic_image((64, 64), 31.5, 31.5, 6.0, 4.0, 1.0, 0.0, 1000.0)
    np.testing.assert_allclose(img, img[::-1, ::-1], rtol=1e-9, atol=1e-12)
    yy, xx = np.mgrid[0:64, 0:64]
    assert (img * xx).sum() / img.sum() == pytest.approx(31.5, abs=0.02)
