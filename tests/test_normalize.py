"""Physical <-> normalized round trips, per transform, and the record's bookkeeping."""

import json

import numpy as np
import pytest

from discoverydiff.errors import ConfigError
from discoverydiff.normalize import NormalizationRecord, fit_normalization, lupton_forward


def _round_trip(physical, **kw):
    record = fit_normalization(physical, **kw)
    y, clipped = record.to_normalized(physical)
    back = record.to_physical(y)
    return record, y, clipped, back


@pytest.mark.parametrize("transform,make", [
    ("log10", lambda rng: np.exp(rng.normal(0, 3, (6, 1, 32, 32)))),           # 8 decades of G0
    ("asinh", lambda rng: rng.normal(0, 1, (6, 1, 32, 32))
     * np.array([1e-3, 1, 50])[rng.integers(0, 3, (6, 1, 32, 32))]),  # signed, several scales
    ("linear", lambda rng: rng.normal(3, 2, (6, 1, 32, 32))),
])
def test_round_trip_unclipped_pixels_is_exact(transform, make, rng):
    physical = make(rng)
    record, y, clipped, back = _round_trip(physical, transform=transform, percentiles=(1, 99),
                                           channel_mode="replicate", model_channels=3)
    assert y.dtype == np.float32 and y.shape == (6, 3, 32, 32)
    assert y.min() >= -1 and y.max() <= 1
    keep = ~clipped
    rel = np.abs(back[keep] - physical[keep]) / np.maximum(np.abs(physical[keep]), 1e-300)
    if transform != "log10":  # near zero, compare on the scale of the data
        rel = np.abs(back[keep] - physical[keep]) / np.abs(physical).max()
    assert rel.max() < 1e-5
    # the percentiles clip about 2 % of pixels, and the record says so
    assert 0.01 < record.clipped_fraction < 0.03
    assert record.clipped_fraction == pytest.approx(clipped.mean())


def test_clipped_pixels_map_to_the_bounds(rng):
    physical = np.exp(rng.normal(0, 1, (4, 1, 16, 16)))
    record, y, clipped, back = _round_trip(physical, transform="log10", percentiles=(10, 90),
                                           channel_mode="replicate", model_channels=3)
    assert np.allclose(np.log10(back[clipped & (physical > 1)]), record.hi[0])
    assert np.allclose(np.log10(back[clipped & (physical < 1)]), record.lo[0])


def test_unclipped_normalization_keeps_the_affine_scale_beyond_the_bounds(rng):
    physical = np.exp(rng.normal(0, 1, (4, 1, 16, 16)))
    record, y, clipped, _ = _round_trip(physical, transform="log10", percentiles=(10, 90),
                                        channel_mode="replicate", model_channels=3)
    free, mask = record.to_normalized(physical, clip=False)
    np.testing.assert_array_equal(mask, clipped)
    np.testing.assert_array_equal(np.clip(free, -1, 1), y)
    beyond = np.repeat(clipped, 3, axis=1)
    assert (np.abs(free[beyond]) > 1).all() and (np.abs(free[~beyond]) <= 1).all()
    # the same line through (lo, -1) and (hi, 1): log10 values, not only their order
    lo, hi = record.lo[0], record.hi[0]
    expected = 2 * (np.log10(physical) - lo) / (hi - lo) - 1
    np.testing.assert_allclose(free[:, :1], expected, rtol=1e-5, atol=1e-5)


def test_per_channel_identity_three_fields(rng):
    # three fields of different units and ranges, one model channel each
    physical = np.stack([np.exp(rng.normal(0, 1, (5, 24, 24))),
                         np.exp(rng.normal(40, 2, (5, 24, 24))),
                         np.exp(rng.normal(-5, 0.5, (5, 24, 24)))], axis=1)
    record, y, clipped, back = _round_trip(physical, transform="log10", percentiles=(0, 100),
                                           units=["Habing", "cm-2", "K"], channel_names=["G0", "NH", "T"])
    assert record.clipped_fraction == 0
    assert len(record.lo) == 3 and record.lo[1] > record.hi[2]
    np.testing.assert_allclose(back, physical, rtol=1e-5)
    for c in range(3):  # each channel spans exactly [-1, 1]
        assert y[:, c].min() == pytest.approx(-1) and y[:, c].max() == pytest.approx(1)


def test_explicit_bounds_for_8bit_images(rng):
    physical = rng.integers(0, 256, (3, 3, 16, 16)).astype(float)
    record, y, clipped, back = _round_trip(physical, transform="linear", lo=0, hi=255)
    assert record.percentiles is None and record.lo == [0.0] * 3 and record.hi == [255.0] * 3
    np.testing.assert_allclose(y, physical / 127.5 - 1, atol=1e-6)
    np.testing.assert_allclose(back, physical, atol=1e-4)


def test_replicate_inverse_averages_model_channels(rng):
    physical = np.exp(rng.normal(0, 1, (2, 1, 8, 8)))
    record = fit_normalization(physical, "log10", percentiles=(0, 100), channel_mode="replicate")
    y, _ = record.to_normalized(physical)
    y = y.astype(np.float64)
    y[:, 0] += 0.1
    y[:, 2] -= 0.1
    np.testing.assert_allclose(record.to_physical(y), physical, rtol=1e-5)


def test_lupton_inverts_astropy_forward_on_unclipped_pixels(rng):
    # g, r, z-like fluxes in nanomaggies; red channel first as make_lupton_rgb expects
    bands = np.abs(rng.normal(0.0, 1.0, (2, 3, 32, 32))) * np.array([0.05, 0.03, 0.02])[None, :, None, None]
    params = {"Q": 8.0, "stretch": 0.5, "minimum": [0.0, 0.0, 0.0], "band_scales": [0.025, 0.01385, 0.0066]}
    record, y, clipped, back = _round_trip(bands, transform="lupton", params=params, lo=0, hi=1)
    rgb = lupton_forward(bands, **params)
    assert rgb.min() >= 0 and rgb.max() <= 1
    unclipped = (rgb > 0) & (rgb.max(axis=1, keepdims=True) < 1)
    assert unclipped.mean() > 0.5
    np.testing.assert_allclose(back[unclipped], bands[unclipped], rtol=1e-4)


def test_record_json_round_trip_and_validation(rng):
    physical = np.exp(rng.normal(0, 1, (2, 1, 8, 8)))
    record = fit_normalization(physical, "log10", units=["Habing"], channel_names=["G0"],
                               channel_mode="replicate", geometry={"resample": "box"})
    again = NormalizationRecord.from_json(record.to_json())
    assert again == record
    data = json.loads(record.to_json())
    del data["lo"]
    with pytest.raises(ConfigError, match="lacks.*lo"):
        NormalizationRecord.from_json(json.dumps(data))
    with pytest.raises(ConfigError, match="hi must exceed lo"):
        NormalizationRecord("log10", {}, [1.0], [0.0], [""], ["G0"], "replicate")
    with pytest.raises(ConfigError, match="one-to-one"):
        NormalizationRecord("log10", {}, [0.0, 0.0], [1.0, 1.0], ["", ""], ["a", "b"], "identity", 3)


def test_constant_channel_is_refused():
    with pytest.raises(ConfigError, match="constant"):
        fit_normalization(np.ones((2, 1, 4, 4)), "log10", channel_mode="replicate")


# ----------------------------------------------------------------------------- Gaussianization
def _heavy_tailed_fields(rng, n=8, size=32):
    """Positive fields whose log10 is far from Gaussian: exp(-A) with A log-normal (a shadowed
    radiation field: log10 G0 = -A log10 e has a long lower tail)."""
    a = np.exp(rng.normal(0.5, 0.5, (n, 1, size, size)))
    return np.exp(-a)


def test_gaussianized_scores_are_the_rank_normal_scores(rng):
    from scipy.special import ndtri
    from scipy.stats import rankdata

    physical = _heavy_tailed_fields(rng)
    record, y, clipped = fit_normalization(physical, "log10", percentiles=(0, 100), channel_mode="replicate",
                                           gaussianize=True, return_normalized=True)
    assert clipped.sum() == 0 and record.clipped_fraction == 0
    scores = y[:, 0].astype(np.float64).ravel() * record.hi[0]  # lo = -hi: y is the score over its end
    assert record.lo[0] == pytest.approx(-record.hi[0])
    # the closed form: the normal score of each value's rank, with Hazen plotting positions
    values = np.log10(physical).ravel()
    exact = ndtri((rankdata(values) - 0.5) / values.size)
    assert record.hi[0] == pytest.approx(exact.max(), rel=1e-9)
    # 129 knots: linear between quantiles, so within the sampling jitter of the ranks between knots
    error = scores - exact
    assert np.sqrt(np.mean(error**2)) < 0.005
    assert np.abs(error[np.abs(exact) < 3.0]).max() < 0.05 and np.abs(error).max() < 0.15
    assert abs(scores.mean()) < 0.01 and scores.std() == pytest.approx(1.0, abs=0.01)


def test_gaussianized_round_trip_is_exact_and_survives_json(rng):
    physical = _heavy_tailed_fields(rng)
    record, y, clipped = fit_normalization(physical, "log10", percentiles=(1, 99), channel_mode="replicate",
                                           gaussianize=17, return_normalized=True)
    assert len(record.gaussianize["knots"][0]) == 17
    assert 0.015 < record.clipped_fraction < 0.025  # the percentiles are of the scores
    back = record.to_physical(y)
    keep = ~clipped
    np.testing.assert_allclose(np.log10(back[keep]), np.log10(physical[keep]), rtol=1e-5, atol=1e-5)
    again = NormalizationRecord.from_json(record.to_json())
    assert again == record
    np.testing.assert_array_equal(again.to_physical(y), back)


def test_gaussianized_mixtures_keep_the_one_point_distribution(rng):
    # Two independent fields with excess kurtosis k mix (equal weights, squared weights summing to
    # one) into excess kurtosis k / 2 in log10; mixed as normal scores, the mixture's values go
    # back through the inverse map with the targets' own distribution.
    from discoverydiff.stats.onepoint import pdf_moments

    physical = _heavy_tailed_fields(rng, n=16, size=48)
    plain = fit_normalization(physical, "log10", percentiles=(0, 100), channel_mode="replicate")
    gauss = fit_normalization(physical, "log10", percentiles=(0, 100), channel_mode="replicate", gaussianize=True)
    target = pdf_moments(physical)
    assert target["kurtosis"] > 1.0

    def mixed(record):
        y = record.to_normalized(physical)[0].astype(np.float64)
        if record.gaussianize is None:  # mix log10 values about their mean, as the scores are mixed about 0
            centre = y.mean()
            mix = centre + ((y[0::2] - centre) + (y[1::2] - centre)) / np.sqrt(2)
        else:
            mix = (y[0::2] + y[1::2]) / np.sqrt(2)
        return pdf_moments(record.to_physical(np.clip(mix, -1, 1)))

    plain_mix, gauss_mix = mixed(plain), mixed(gauss)
    assert plain_mix["kurtosis"] < 0.7 * target["kurtosis"]
    assert gauss_mix["kurtosis"] == pytest.approx(target["kurtosis"], rel=0.25)
    assert gauss_mix["mean"] == pytest.approx(target["mean"], abs=0.05 * target["std"])
    assert gauss_mix["std"] == pytest.approx(target["std"], rel=0.1)
    assert gauss_mix["skewness"] == pytest.approx(target["skewness"], abs=0.2)


def test_gaussianized_values_beyond_the_fit_are_counted_as_clipped(rng):
    fewshot = _heavy_tailed_fields(rng, n=4)
    record = fit_normalization(fewshot, "log10", percentiles=(0, 100), channel_mode="replicate", gaussianize=True)
    lower, upper = fewshot.min(), fewshot.max()
    heldout = fewshot.copy()
    heldout[0, 0, 0, 0] = lower / 10  # beyond the few-shot range, both ends
    heldout[0, 0, 0, 1] = min(1.0, upper * 1.0001)
    heldout[0, 0, 0, 1] = upper * 2
    free, clipped = record.to_normalized(heldout, clip=False)
    assert clipped[0, 0, 0, 0] and clipped[0, 0, 0, 1] and clipped.sum() == 2
    assert free[0, 0, 0, 0] < -1 and free[0, 0, 0, 1] > 1  # the end segments' lines continue
    back = record.to_physical(np.clip(free, -1, 1))
    assert back[0, 0, 0, 0] == pytest.approx(lower, rel=1e-6) and back[0, 0, 0, 1] == pytest.approx(upper, rel=1e-6)


def test_gaussianize_is_refused_where_it_cannot_apply(rng):
    physical = _heavy_tailed_fields(rng, n=2)
    record = fit_normalization(physical, "log10", channel_mode="replicate", gaussianize=True)
    data = json.loads(record.to_json())
    data["gaussianize"]["scores"][0] = data["gaussianize"]["scores"][0][::-1]
    with pytest.raises(ConfigError, match="increasing"):
        NormalizationRecord.from_json(json.dumps(data))
    with pytest.raises(ConfigError, match="lupton"):
        fit_normalization(np.abs(physical.repeat(3, axis=1)), "lupton", lo=0, hi=1, gaussianize=True,
                          params={"Q": 8.0, "stretch": 0.5, "minimum": [0.0] * 3, "band_scales": [1.0] * 3})
    with pytest.raises(ConfigError, match="constant"):
        fit_normalization(np.ones((2, 1, 4, 4)), "log10", channel_mode="replicate", gaussianize=True)
