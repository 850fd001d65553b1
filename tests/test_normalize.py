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
