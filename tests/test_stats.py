"""Domain statistics against independent implementations (powerbox, scipy) and known answers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from discoverydiff import stats
from discoverydiff.demo import gaussian_random_field, sersic_image
from discoverydiff.errors import InputError


def _powerbox_power(field, boxlength, edges):
    powerbox = pytest.importorskip("powerbox")
    # nthreads=1: numpy's FFT inside powerbox, whether or not pyFFTW is installed.
    return powerbox.get_power(field, boxlength, bins=edges, nthreads=1)


# --------------------------------------------------------------------------- power spectra
@pytest.mark.filterwarnings("ignore:One or more radial bins had no cells")
@pytest.mark.parametrize(("shape", "boxlength", "binning"), [
    ((64, 64), 3.0, {}),
    ((64, 64), 3.0, {"log_bins": True}),
    ((48, 80), (2.4, 4.0), {"n_bins": 17}),
    ((33, 33), 7.0, {}),
])
def test_power_spectrum_matches_powerbox(rng, shape, boxlength, binning):
    maps = rng.normal(size=(3, *shape)) + 5.0
    edges = stats.power_spectrum_bin_edges(shape, boxlength, **binning)
    k, power, counts = stats.radial_power_spectrum(maps, boxlength, **binning, subtract_mean=False)
    assert power.shape == (3, edges.size - 1)
    filled = counts > 0
    assert filled.sum() >= 0.8 * counts.size
    for field, ours in zip(maps, power):
        ref = _powerbox_power(field, boxlength, edges)
        np.testing.assert_array_equal(counts, ref.nsamples)
        np.testing.assert_allclose(ours[filled], ref.power[filled], rtol=1e-6, atol=0)
        np.testing.assert_allclose(k[filled], ref.bin_avg[filled], rtol=1e-6, atol=0)
        assert np.isnan(ours[~filled]).all()


def test_power_spectrum_overdensity_matches_powerbox_on_the_overdensity(rng):
    maps = np.exp(rng.normal(size=(2, 40, 40)))
    edges = stats.power_spectrum_bin_edges((40, 40), 10.0)
    _, power, _ = stats.radial_power_spectrum(maps, 10.0, overdensity=True)
    for field, ours in zip(maps, power):
        ref = _powerbox_power(field / field.mean() - 1.0, 10.0, edges)
        np.testing.assert_allclose(ours, ref.power, rtol=1e-6)


def test_default_bins_are_one_fundamental_wide_up_to_nyquist():
    edges = stats.power_spectrum_bin_edges((256, 256), 2.0)
    dk = 2 * np.pi / 2.0
    np.testing.assert_allclose(edges / dk, np.arange(129) + 0.5)
    k, _, counts = stats.radial_power_spectrum(np.zeros((256, 256)) + np.arange(256), 2.0)
    # |k| in [dk/2, 3dk/2): (+-1, 0), (0, +-1) and the four diagonals at sqrt(2) dk.
    assert counts[0] == 8 and counts[1] == 12
    np.testing.assert_allclose(k[0], dk * (4 + 4 * np.sqrt(2)) / 8)


@pytest.mark.parametrize("slope", [-2.5, -3.0, -3.7])
def test_slope_recovered_from_gaussian_random_fields(slope):
    rng = np.random.default_rng(7)
    maps = np.stack([gaussian_random_field((256, 256), slope, rng) for _ in range(6)])
    k, power, _ = stats.radial_power_spectrum(maps, boxlength=256.0)
    dk = 2 * np.pi / 256.0
    fitted, amplitude, err = stats.fit_power_law(k, power.mean(axis=0), 2 * dk, 64 * dk)
    assert abs(fitted - slope) < 0.05
    assert 0 < err < 0.05 and amplitude > 0


def test_parseval_sum_of_binned_power_is_the_variance(rng):
    """sum_j counts_j P_j / V = population variance, with bins holding every non-zero mode."""
    maps = rng.normal(size=(3, 40, 56)) * 2.0 + 7.0
    boxlength = (4.0, 5.6)
    _, power, counts = stats.radial_power_spectrum(maps, boxlength, bins=[1e-12, 1e12])
    assert counts[0] == 40 * 56 - 1
    np.testing.assert_allclose(power[:, 0] * counts[0] / (4.0 * 5.6), maps.var(axis=(1, 2)), rtol=1e-10)


def test_torch_backend_equals_numpy(rng):
    maps = np.exp(rng.normal(size=(5, 32, 48))).astype(np.float32)
    for options in ({}, {"window": "hann", "overdensity": True}, {"log_bins": True, "boxlength": (2.0, 3.0)}):
        k_np, p_np, c_np = stats.radial_power_spectrum(maps, backend="numpy", chunk_size=2, **options)
        k_t, p_t, c_t = stats.radial_power_spectrum(maps, backend="torch", chunk_size=3, **options)
        np.testing.assert_array_equal(c_np, c_t)
        np.testing.assert_allclose(p_t, p_np, rtol=1e-6)
        np.testing.assert_allclose(k_t, k_np, rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_float32_fast_path_is_close_to_float64(backend):
    """float32 FFTs: per-bin power within 1e-5 of float64 for k^-3 fields, and the same slope."""
    rng = np.random.default_rng(3)
    maps = np.stack([gaussian_random_field((128, 128), -3.0, rng) for _ in range(4)]) + 5.0
    k64, p64, c64 = stats.radial_power_spectrum(maps, boxlength=128.0, backend=backend)
    k32, p32, c32 = stats.radial_power_spectrum(maps, boxlength=128.0, backend=backend, precision="float32")
    np.testing.assert_array_equal(c32, c64)
    np.testing.assert_allclose(k32, k64, rtol=1e-12)
    rel = np.abs(p32 / p64 - 1)
    assert rel.max() < 1e-5 and rel.max() > 0  # single precision did run, and stayed close
    with pytest.raises(ValueError, match="precision"):
        stats.radial_power_spectrum(maps, precision="float16")


def test_torch_backend_on_cuda_equals_numpy(rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    maps = rng.normal(size=(4, 64, 64))
    _, p_np, _ = stats.radial_power_spectrum(maps)
    _, p_cuda, _ = stats.radial_power_spectrum(maps, backend="torch", device="cuda")
    np.testing.assert_allclose(p_cuda, p_np, rtol=1e-6)


def test_single_map_gives_one_spectrum(rng):
    field = rng.normal(size=(32, 32))
    _, single, _ = stats.radial_power_spectrum(field)
    _, batch, _ = stats.radial_power_spectrum(field[None])
    assert single.shape == batch[0].shape
    np.testing.assert_allclose(single, batch[0])


def test_window_reduces_leakage_of_a_non_periodic_field():
    rng = np.random.default_rng(11)
    slope = -3.7
    maps = np.stack([gaussian_random_field((128, 128), slope, rng) for _ in range(4)])
    y, x = np.mgrid[0:128, 0:128]
    tilted = maps + 3.0 * (x + 0.5 * y) / 128.0  # a gradient: a jump at the periodic edge
    dk = 2 * np.pi / 128.0
    fitted = {}
    for window in (None, "hann"):
        k, power, _ = stats.radial_power_spectrum(tilted, 128.0, window=window)
        fitted[window] = stats.fit_power_law(k, power.mean(axis=0), 4 * dk, 48 * dk)[0]
    assert abs(fitted[None] - slope) > 0.4  # leakage flattens the spectrum towards k^-2
    assert abs(fitted["hann"] - slope) < 0.1


def test_window_preserves_white_noise_level(rng):
    noise = rng.normal(size=(8, 64, 64))
    _, plain, _ = stats.radial_power_spectrum(noise, 64.0)
    _, windowed, _ = stats.radial_power_spectrum(noise, 64.0, window=("tukey", 0.5))
    assert abs(np.nanmean(windowed) / np.nanmean(plain) - 1) < 0.05


def test_fit_power_law_exact_and_errors():
    k = np.geomspace(0.1, 10, 20)
    slope, amplitude, err = stats.fit_power_law(k, 3.0 * k**-2.7)
    assert slope == pytest.approx(-2.7, abs=1e-12)
    assert amplitude == pytest.approx(3.0, rel=1e-12)
    assert err == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(ValueError, match="usable bins"):
        stats.fit_power_law(k, k**-2, k_min=9.0)


def test_power_law_slope_is_scipys_least_squares_slope():
    rng = np.random.default_rng(3)
    k = np.arange(1, 40, dtype=np.float64)
    for _ in range(20):
        power = k ** rng.uniform(-4, -1) * np.exp(rng.normal(0, 0.5, k.size))
        power[rng.integers(0, k.size, 3)] = rng.choice([0.0, np.nan, -1.0])  # bins the fit skips
        keep = np.isfinite(power) & (power > 0) & (k >= 2) & (k <= 30)
        expected = sps.linregress(np.log10(k[keep]), np.log10(power[keep])).slope
        assert stats.power_law_slope(k, power, 2, 30) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert stats.power_law_slope(k, 5 * k**-3.2) == pytest.approx(-3.2, abs=1e-12)
    with pytest.raises(ValueError, match="usable bins"):
        stats.power_law_slope(k, k**-2, k_min=39.0)


def test_power_spectrum_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        stats.radial_power_spectrum(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="backend"):
        stats.radial_power_spectrum(np.zeros((4, 4)), backend="jax")
    with pytest.raises(ValueError, match="zero mean"):
        stats.radial_power_spectrum(np.zeros((4, 4)), overdensity=True)


# --------------------------------------------------------------------------- one-point statistics
def test_pdf_log10_is_the_density_histogram_of_log10(lognormal_maps):
    edges, density = stats.pdf_log10(lognormal_maps, bins=30, range=(-3, 5))
    expected, expected_edges = np.histogram(np.log10(lognormal_maps), bins=30, range=(-3, 5), density=True)
    np.testing.assert_allclose(edges, expected_edges)
    np.testing.assert_allclose(density, expected)
    assert np.sum(density * np.diff(edges)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="non-positive"):
        stats.pdf_log10(np.array([1.0, 0.0, 2.0]))


def test_pdf_moments_match_scipy(lognormal_maps):
    moments = stats.pdf_moments(lognormal_maps)
    logs = np.log10(lognormal_maps).ravel()
    assert moments["mean"] == pytest.approx(np.mean(logs), rel=1e-12)
    assert moments["std"] == pytest.approx(np.std(logs), rel=1e-12)
    assert moments["skewness"] == pytest.approx(sps.skew(logs), rel=1e-10, abs=1e-12)
    assert moments["kurtosis"] == pytest.approx(sps.kurtosis(logs), rel=1e-10, abs=1e-12)
    described = sps.describe(logs)
    assert moments["skewness"] == pytest.approx(described.skewness, abs=1e-12)
    raw = stats.pdf_moments(np.array([-1.0, 0.0, 4.0]), log10=False)
    assert raw["mean"] == pytest.approx(1.0)


def test_wasserstein1_closed_forms(rng):
    a = rng.normal(size=300)
    assert stats.wasserstein1(a.reshape(3, 100), a[::-1]) == 0.0  # pooled values, order irrelevant
    assert stats.wasserstein1(a, a + 0.25) == pytest.approx(0.25, rel=1e-12)  # a shift moves every unit of mass
    # by hand: CDFs of {0, 1} and {0.5, 2} differ by 1/2 on [0, 0.5) and [1, 2): 0.25 + 0.5
    assert stats.wasserstein1([0.0, 1.0], [0.5, 2.0]) == pytest.approx(0.75)
    # unequal sizes: {0} against {0, 1}: the CDFs differ by 1/2 on [0, 1)
    assert stats.wasserstein1([0.0], [0.0, 1.0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="finite"):
        stats.wasserstein1([np.nan], [0.0])


# --------------------------------------------------------------------------- morphology
def _galaxy(n, size=64, noise=1e-3, sky=0.0, seed=0):
    image = sersic_image((size, size), size // 2, size // 2, size / 8.0, n, 0.8, 0.3, 1000.0)
    return image + sky + np.random.default_rng(seed).normal(0.0, noise * image.max(), image.shape)


def test_morphology_of_sersic_galaxies_and_a_blank_image():
    """PSF-free Sersic profiles of known index; sky known (0) so the wings are not cut."""
    images = np.stack([_galaxy(1.0), _galaxy(4.0), np.zeros((64, 64))])
    table = stats.galaxy_morphology(images, names=["disk", "bulge", "blank"], sky=0.0)
    assert list(table["name"]) == ["disk", "bulge", "blank"]
    disk, bulge, blank = (table.iloc[i] for i in range(3))
    assert not disk["failed"] and not bulge["failed"]
    assert disk["sersic_n"] == pytest.approx(1.0, rel=0.15)
    assert bulge["sersic_n"] == pytest.approx(4.0, rel=0.15)
    # C = 5 log10(r80 / r20): 2.7 for an exponential; a de Vaucouleurs profile gives 5.2 in
    # total light but ~3.7-4.2 inside statmorph's 1.5 Petrosian radii on a 64 px stamp.
    assert disk["concentration"] == pytest.approx(2.7, abs=0.15)
    assert 3.4 < bulge["concentration"] < 5.3
    assert bulge["concentration"] > disk["concentration"] + 0.7
    assert bulge["gini"] > disk["gini"]
    assert abs(disk["asymmetry"]) < 0.05
    assert blank["failed"] and blank["error"] and blank["flag"] == 4
    assert np.isnan(blank["sersic_n"])


def test_morphology_estimates_the_sky_from_the_border():
    noise_only = np.random.default_rng(5).normal(10.0, 1.0, (48, 48))
    image = _galaxy(1.0, size=48, sky=5.0, seed=1)
    two_bands = np.stack([np.stack([noise_only, noise_only]), np.stack([image, image])])  # (N, C, H, W)
    table = stats.galaxy_morphology(two_bands)
    assert table.loc[0, "failed"] and "no source" in table.loc[0, "error"]
    assert not table.loc[1, "failed"]
    assert table.loc[1, "sky"] == pytest.approx(5.0, abs=0.05)
    assert table.loc[1, "sersic_n"] == pytest.approx(1.0, rel=0.15)
    with_nan = np.stack([image, np.full_like(image, np.nan)])[None]
    nan_table = stats.galaxy_morphology(with_nan, band=1)
    assert nan_table.loc[0, "failed"] and "NaN" in nan_table.loc[0, "error"]


# --------------------------------------------------------------------------- memorization
def test_near_copy_share_of_copies_and_of_independent_draws(rng):
    references = rng.uniform(-1, 1, size=(12, 3, 8, 8))
    order = rng.permutation(12)
    copies = references[order] + rng.normal(0, 1e-4, size=references.shape)
    ratios = stats.nearest_neighbour_ratios(copies, references, chunk_size=5)
    np.testing.assert_array_equal(ratios["nearest_index"], order)
    assert stats.near_copy_share(ratios) == 1.0
    independent = rng.uniform(-1, 1, size=(20, 3, 8, 8))
    assert stats.near_copy_share(stats.nearest_neighbour_ratios(independent, references)) == 0.0


def test_near_copy_share_counts_exactly_the_ratios_below_the_threshold():
    """Samples on the segment between two orthogonal references r0, r1 (|r| = 10, the others farther):
    at s (r1 - r0) from r0, d1 / d2 = s / (1 - s) exactly."""
    references = 10.0 * np.eye(6)
    wanted = np.array([0.1, 0.3, 0.34, 0.5, 0.9])  # d1/d2 of five samples
    s = wanted / (1 + wanted)
    samples = references[0] + s[:, None] * (references[1] - references[0])
    ratios = stats.nearest_neighbour_ratios(samples, references)
    np.testing.assert_allclose(ratios["ratio"], wanted, rtol=1e-12)
    np.testing.assert_array_equal(ratios["nearest_index"], 0)
    np.testing.assert_array_equal(ratios["second_index"], 1)
    assert stats.near_copy_share(ratios) == 2 / 5  # 0.1 and 0.3 are below 1/3
    assert stats.near_copy_share(ratios, threshold=0.45) == 3 / 5
    assert stats.near_copy_share(ratios["ratio"].to_numpy(), threshold=0.95) == 1.0


def test_nearest_neighbour_distances_match_brute_force(rng):
    from scipy.spatial.distance import cdist

    samples, references = rng.normal(size=(17, 40)), rng.normal(size=(23, 40))
    table = stats.nearest_neighbour_ratios(samples, references, chunk_size=4)
    full = cdist(samples, references)
    ordered = np.sort(full, axis=1)
    np.testing.assert_array_equal(table["nearest_index"], full.argmin(axis=1))
    np.testing.assert_allclose(table["d1"], ordered[:, 0], rtol=1e-12)
    np.testing.assert_allclose(table["d2"], ordered[:, 1], rtol=1e-12)
    np.testing.assert_allclose(table["ratio"], ordered[:, 0] / ordered[:, 1], rtol=1e-12)
    assert stats.near_copy_share(table, threshold=2.0) == 1.0


def test_reproducibility_score(rng):
    a = rng.uniform(-1, 1, size=(10, 3, 8, 8)) - 0.8  # a common dark offset, as a sky at -1
    assert stats.reproducibility_score(a, a.copy()) == 1.0
    assert stats.reproducibility_score(a, a + rng.normal(0, 0.05, a.shape)) == 1.0
    b = rng.uniform(-1, 1, size=a.shape) - 0.8
    assert stats.reproducibility_score(a, b) == 0.0
    similarity = stats.paired_cosine_similarity(a, b)
    assert np.all(np.abs(similarity) < 0.3)
    # Without centring the common offset makes independent images look alike.
    assert stats.paired_cosine_similarity(a, b, center=False).min() > 0.6


def _save_feature_model(path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(model, torch.zeros(1, 3, 8, 8)).save(str(path))
    return model


def test_load_feature_extractor(tmp_path, rng):
    torch = pytest.importorskip("torch")
    model = _save_feature_model(tmp_path / "features.pt")
    extract = stats.load_feature_extractor(tmp_path / "features.pt", batch_size=3)
    images = rng.uniform(-1, 1, size=(7, 3, 8, 8))
    features = extract(images)
    assert features.shape == (7, 16) and features.dtype == np.float64
    with torch.no_grad():
        expected = model(torch.from_numpy(images.astype(np.float32))).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    table = stats.nearest_neighbour_ratios(images, images, features=extract)
    np.testing.assert_array_equal(table["nearest_index"], np.arange(7))


def test_load_feature_extractor_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="does not exist") as missing:
        stats.load_feature_extractor(tmp_path / "absent.pt")
    assert "absent.pt" in str(missing.value)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="bad.pt"):
        stats.load_feature_extractor(bad)


# --------------------------------------------------------------------------- comparison
def _lognormal_fields(n, slope, seed, size=64):
    rng = np.random.default_rng(seed)
    return np.stack([10.0 ** (0.5 * gaussian_random_field((size, size), slope, rng)) for _ in range(n)])


def test_compare_sets_fields():
    test = _lognormal_fields(8, -3.0, 2)
    sets = {"discovered": _lognormal_fields(6, -3.0, 3)[:, None], "steeper": _lognormal_fields(6, -4.0, 4),
            "fewshot": _lognormal_fields(4, -3.0, 1)}
    table = stats.compare_sets(test, sets, kind="field", fewshot=sets["fewshot"], boxlength=64.0, n_permutations=200)
    assert list(table.columns) == stats.comparison.COLUMNS
    assert set(table["reference"]) == {"test"}
    value = table.set_index(["set", "statistic"])["value"]
    # 7 domain statistics and 3 novelty statistics (near_copy_share, mscore, novelty_w1) per generated set;
    # the few-shot maps are their own novelty references: domain statistics only
    assert len(table) == 2 * 10 + 7
    inside = (table["ci_low"] <= table["value"] + 1e-9) & (table["value"] <= table["ci_high"] + 1e-9)
    assert inside[~table["statistic"].isin(["log10_kurtosis_difference", "pdf_w1_log10"])].mean() > 0.8
    assert value["discovered", "power_log10_distance"] < value["steeper", "power_log10_distance"]
    assert abs(value["discovered", "power_slope_difference"]) < 0.2
    assert value["steeper", "power_slope_difference"] == pytest.approx(-1.0, abs=0.25)
    by = table.set_index(["set", "statistic"])
    # differences to the discovered set: positive where the discovered set is closer, beyond the interval and
    # with a small p-value for the steeper spectrum; none for the discovered set itself
    steep = by.loc[("steeper", "power_slope_difference")]
    assert steep["delta_vs_discovered"] == pytest.approx(abs(steep["value"]) - abs(value["discovered",
                                                                                        "power_slope_difference"]))
    assert steep["delta_low"] > 0 and steep["p_vs_discovered"] < 0.05
    assert by.loc[("discovered", "pdf_w1_log10"), ["delta_vs_discovered", "p_vs_discovered"]].isna().all()
    assert table.loc[table["set"] != "discovered", "p_vs_discovered"].between(0, 1).all()
    units = table.set_index("statistic")["units"]
    assert units["pdf_w1_log10"].iloc[0] == "dex"
    assert set(table["n_real"]) == {8, 4}  # statistics against the 8 test maps, novelty against the 4 few-shot


def test_compare_sets_intervals_resample_both_sides_as_scipys_bootstrap():
    """The PDF W1 interval is scipy.stats.bootstrap(paired=False) of the W1 between the pooled log10 values of
    resampled maps of the set and of the reference (the grid's W1 is exact to one bin)."""
    from scipy.stats import bootstrap, wasserstein_distance

    test, judged = _lognormal_fields(10, -3.0, 5, size=16), _lognormal_fields(8, -2.5, 6, size=16)
    table = stats.compare_sets(test, {"discovered": judged}, kind="field", n_boot=3000, seed=2)
    row = table.set_index("statistic").loc["pdf_w1_log10"]

    def w1(rows_a, rows_b):  # scipy resamples 1-D samples: resample map numbers, look the maps up
        a, b = judged[rows_a.astype(int)], test[rows_b.astype(int)]
        return wasserstein_distance(np.log10(a).ravel(), np.log10(b).ravel())

    theirs = bootstrap((np.arange(8.0), np.arange(10.0)), w1, paired=False, vectorized=False, n_resamples=3000,
                       method="percentile", random_state=3).confidence_interval
    assert row["value"] == pytest.approx(w1(np.arange(8.0), np.arange(10.0)), abs=1e-3)
    assert row["ci_low"] == pytest.approx(theirs.low, abs=0.01)
    assert row["ci_high"] == pytest.approx(theirs.high, abs=0.01)


def test_permutation_pvalues_hold_their_level_for_sets_of_one_distribution():
    """Sets drawn like the discovered set: p-values below 0.05 in about 5% of the tests, not more."""
    small = []
    for seed in range(12):
        test = _lognormal_fields(10, -3.0, 100 + seed, size=16)
        sets = {"discovered": _lognormal_fields(8, -3.0, 200 + seed, size=16),
                "same": _lognormal_fields(8, -3.0, 300 + seed, size=16)}
        table = stats.compare_sets(test, sets, kind="field", n_boot=0, n_permutations=100, seed=seed)
        p = table.loc[table["set"] == "same", "p_vs_discovered"].dropna()
        small.append((p < 0.05).mean())
    assert np.mean(small) <= 0.12


def test_compare_sets_galaxies():
    test = np.stack([_galaxy(1.0, size=40, seed=s) for s in range(4)])
    sets = {"disks": np.stack([_galaxy(1.0, size=40, seed=10 + s) for s in range(2)]),
            "bulges": np.stack([_galaxy(4.0, size=40, seed=20), np.zeros((40, 40))])}
    table = stats.compare_sets(test, sets, kind="galaxy", morphology_kwargs={"sky": 0.0}, compare_with="disks",
                               n_permutations=20)
    value = table.set_index(["set", "statistic"])["value"]
    assert value["bulges", "concentration_w1"] > value["disks", "concentration_w1"] + 0.5
    assert value["bulges", "failed_fit_share"] == 0.5 and value["disks", "failed_fit_share"] == 0.0
    assert {"sersic_n_w1", "gini_w1", "m20_w1"} <= set(table["statistic"])
    bulges = table[table["set"] == "bulges"].set_index("statistic")
    assert bulges.loc["concentration_w1", "delta_vs_discovered"] > 0.5  # the disks (compare_with) are closer


def test_compare_sets_reads_measured_morphology_tables_instead_of_measuring_again(tmp_path, monkeypatch):
    from discoverydiff.stats import comparison

    test = np.stack([_galaxy(1.0, size=40, seed=s) for s in range(2)])
    sets = {"bulges": np.stack([_galaxy(4.0, size=40, seed=20), np.zeros((40, 40))])}
    direct = stats.compare_sets(test, sets, kind="galaxy", morphology_kwargs={"sky": 0.0})
    paths = {}
    for name, data in {"test": test, **sets}.items():
        paths[name] = tmp_path / f"{name}.csv"
        stats.galaxy_morphology(data, sky=0.0).to_csv(paths[name], index=False)
    tables = {name: stats.read_morphology_table(path) for name, path in paths.items()}
    assert tables["bulges"]["failed"].tolist() == [False, True] and tables["bulges"]["error"][0] == ""

    def no_measuring(*args, **kwargs):
        raise AssertionError("morphology measured again")

    monkeypatch.setattr(comparison, "galaxy_morphology", no_measuring)
    from_tables = stats.compare_sets(test, sets, kind="galaxy", morphology_tables=tables)
    pd.testing.assert_frame_equal(from_tables, direct)


def test_a_bad_statmorph_keyword_is_an_error_not_a_column_of_failed_fits():
    from discoverydiff.errors import ConfigError

    with pytest.raises(ConfigError, match="takes no cutout_extnt"):
        stats.galaxy_morphology(np.stack([_galaxy(1.0, size=40)]), statmorph_kwargs={"cutout_extnt": 2})
    galaxy = np.stack([_galaxy(1.0, size=40)])
    table = stats.galaxy_morphology(galaxy, sky=0.0, statmorph_kwargs={"n_sigma_outlier": 10})
    assert not table["failed"].any()


def test_compare_sets_without_few_shot_maps_has_no_novelty_rows():
    table = stats.compare_sets(_lognormal_fields(3, -3.0, 1, size=8), {"a": _lognormal_fields(2, -3.0, 2, size=8)},
                               n_boot=0)
    assert not set(table["statistic"]) & {"near_copy_share", "mscore", "novelty_w1"}


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_float32_fast_path_keeps_large_values_and_large_means(backend):
    """|FT|^2 of float32 FFTs is formed in float64 (no overflow at 1e18), and a large mean is
    removed before the cast (the fluctuations keep their digits)."""
    rng = np.random.default_rng(4)
    field = np.stack([gaussian_random_field((64, 64), -3.0, rng) for _ in range(2)])
    for maps in (1e18 * (field - field.min() + 1.0), field + 1e5):
        _, p64, _ = stats.radial_power_spectrum(maps, backend=backend)
        _, p32, _ = stats.radial_power_spectrum(maps, backend=backend, precision="float32")
        assert np.isfinite(p32).all()
        np.testing.assert_allclose(p32, p64, rtol=1e-4)
