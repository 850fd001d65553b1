"""Radial power of latents and spectral matching, against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from discoverydiff.spectral import latent_radial_power, radial_bin_index


def test_a_single_cosine_has_its_closed_form_power():
    # A cos(2 pi 3 x / W) on 16x16: the modes (0, +-3) each hold |F|^2 / (H W) = A^2 H W / 4;
    # bin 3 averages over every mode with round(|k|) = 3
    h = w = 16
    amplitude = 0.7
    x = np.arange(w)
    z = np.broadcast_to(amplitude * np.cos(2 * np.pi * 3 * x / w), (h, w))[None, None]
    index = radial_bin_index((h, w))
    k, power = latent_radial_power(z, return_k=True)
    n_modes = int((index == 3).sum())
    assert power[3] == pytest.approx(2 * amplitude**2 * h * w / 4 / n_modes, rel=1e-12)
    assert np.allclose(np.delete(power, 3), 0, atol=1e-20)
    assert k[3] == 3


def test_white_noise_has_unit_power_in_every_bin(rng):
    z = rng.standard_normal((400, 2, 16, 16))
    power = latent_radial_power(z)
    # each bin averages 400 x 2 x (modes) variables of mean 1 (exponential, or chi^2_1 for the real
    # zero and Nyquist modes); bin 0 holds one chi^2_1 mode per map: 800 draws, std 0.05
    np.testing.assert_allclose(power[1:], 1.0, rtol=0.05)
    assert power[0] == pytest.approx(1.0, abs=0.2)


def test_bins_match_an_independent_radius():
    index = radial_bin_index((8, 6))
    for i in range(8):
        for j in range(6):
            ky = i if i < 4 else i - 8
            kx = j if j < 3 else j - 6
            assert index[i, j] == round((ky**2 + kx**2) ** 0.5)


def test_bad_input_is_refused(rng):
    from discoverydiff.spectral import power_law_filter

    with pytest.raises(ValueError, match="NaN"):
        power_law_filter(np.full((1, 1, 8, 8), np.nan), 0.0, 0.5)
    with pytest.raises(ValueError, match="shape"):
        latent_radial_power(np.ones((8, 8)))
    with pytest.raises(ValueError, match="at least 2x2"):
        radial_bin_index((1, 8))


def _power_law_field(rng, n, size, slope):
    """Gaussian fields (n, 1, size, size) with radial power exactly |k|^slope per mode (random phases)."""
    index = radial_bin_index((size, size))
    amplitude = np.where(index > 0, np.maximum(index, 1).astype(float) ** (slope / 2), 0.0)
    phases = np.fft.fft2(rng.standard_normal((n, 1, size, size)))
    phases /= np.maximum(np.abs(phases), 1e-12)
    return np.real(np.fft.ifft2(amplitude * phases))


def test_a_power_law_tilt_is_fitted_and_undone_exactly(rng):
    from discoverydiff.spectral import fit_power_ratio, power_law_filter

    reference = _power_law_field(rng, 6, 32, -3.0)
    # the same maps with power multiplied by 10**(0.2 + 0.5 log10 k): an exact power-law ratio
    index = radial_bin_index((32, 32))
    gain = np.where(index > 0, 10 ** ((0.2 + 0.5 * np.log10(np.maximum(index, 1))) / 2), 1.0)
    flatter = np.real(np.fft.ifft2(np.fft.fft2(reference) * gain)) + 0.3  # and a mean that must stay
    c, delta = fit_power_ratio(flatter, reference)
    assert c == pytest.approx(0.2, abs=1e-6) and delta == pytest.approx(0.5, abs=1e-6)
    back = power_law_filter(flatter, c, delta)
    np.testing.assert_allclose(back, reference + 0.3, atol=1e-5)


def test_the_filter_changes_the_slope_of_the_comparison_by_delta(rng):
    # an independent measure: the project's radial spectrum (powerbox-checked) and its power-law fit
    from discoverydiff.spectral import power_law_filter
    from discoverydiff.stats.power import fit_power_law, radial_power_spectrum, slope_fit_range

    maps = _power_law_field(rng, 8, 64, -2.5)
    k, p = radial_power_spectrum(maps[:, 0], boxlength=1.0)[:2]
    before = fit_power_law(k, p.mean(0), *slope_fit_range((64, 64)))[0]
    k, p = radial_power_spectrum(power_law_filter(maps, 0.0, 0.6)[:, 0].astype(np.float64), boxlength=1.0)[:2]
    after = fit_power_law(k, p.mean(0), *slope_fit_range((64, 64)))[0]
    assert before == pytest.approx(-2.5, abs=0.1)  # rounded-radius bins against the comparison's bins
    assert after - before == pytest.approx(-0.6, abs=0.02)


def test_fit_refuses_mismatched_or_flat_sets(rng):
    from discoverydiff.spectral import fit_power_ratio

    with pytest.raises(ValueError, match="differ in shape"):
        fit_power_ratio(rng.standard_normal((2, 1, 8, 8)), rng.standard_normal((2, 1, 16, 16)))
    with pytest.raises(ValueError, match="no power"):
        fit_power_ratio(np.ones((2, 1, 8, 8)), rng.standard_normal((2, 1, 8, 8)))


def test_calibration_works_in_the_record_space_and_keeps_the_record(rng):
    # log10 record on [-1, 3] dex: samples whose log10 spectrum is the reference's tilted by k^0.4 come back
    # with the reference's level and tilt, measured in log10 values by an independent fit
    from discoverydiff.normalize import NormalizationRecord
    from discoverydiff.spectral import calibrate_spectrum, fit_power_ratio

    record = NormalizationRecord("log10", {}, [-1.0], [3.0], ["Habing"], ["G0"], "replicate", 3)
    reference_log = 1.0 + 0.3 * _power_law_field(rng, 8, 32, -3.0) / _power_law_field(rng, 8, 32, -3.0).std()
    samples_log = 1.0 + 0.3 * _power_law_field(rng, 8, 32, -3.0) / _power_law_field(rng, 8, 32, -3.0).std()
    index = radial_bin_index((32, 32))
    gain = np.where(index > 0, np.maximum(index, 1) ** 0.2, 1.0)  # power x k^0.4
    samples_log = np.real(np.fft.ifft2(np.fft.fft2(samples_log) * gain))
    samples, clipped = record.to_normalized(10.0**samples_log)
    assert not clipped.any()
    out, fit = calibrate_spectrum(samples, 10.0**reference_log, record)
    assert out.shape == samples.shape and np.abs(out).max() <= 1
    assert fit["delta"] == pytest.approx(0.4, abs=0.15)  # two independent sets of 8 maps: sample noise
    c, delta = fit_power_ratio(record.to_transformed(out), reference_log)
    assert abs(c) < 1e-3 and abs(delta) < 1e-3
    np.testing.assert_allclose(record.to_transformed(out).mean(axis=(2, 3)), samples_log.mean(axis=(2, 3)), atol=1e-4)


def test_the_gate_leaves_a_real_set_alone_and_calibrates_a_tilted_one(rng):
    from discoverydiff.normalize import NormalizationRecord
    from discoverydiff.spectral import calibrate_spectrum

    record = NormalizationRecord("log10", {}, [-1.0], [3.0], ["Habing"], ["G0"], "replicate", 3)

    index = radial_bin_index((32, 32))
    amplitude = np.where(index > 0, np.maximum(index, 1).astype(float) ** -1.5, 0.0)

    def log_maps(n):  # Gaussian random fields: every mode's amplitude scatters, as between real maps
        field = np.real(np.fft.ifft2(amplitude * np.fft.fft2(rng.standard_normal((n, 1, 32, 32)))))
        return 1.0 + 0.3 * field / 0.108  # std 0.3 dex

    reference = 10.0 ** log_maps(16)
    same, _ = record.to_normalized(10.0 ** log_maps(16))  # another draw of the same domain
    out, fit = calibrate_spectrum(same, reference, record)
    assert not fit["applied"] and abs(fit["delta"]) < 2 * fit["null_sd"]
    np.testing.assert_array_equal(out, same)
    tilted_log = np.real(np.fft.ifft2(np.fft.fft2(log_maps(16)) * np.where(index > 0, np.maximum(index, 1) ** 0.25, 1)))
    tilted, _ = record.to_normalized(10.0**tilted_log)
    out, fit = calibrate_spectrum(tilted, reference, record)
    assert fit["applied"] and fit["delta"] > 2 * fit["null_sd"]
    assert not np.allclose(out, tilted)
    with pytest.raises(ValueError, match="at least 4 reference maps"):
        calibrate_spectrum(tilted, reference[:3], record)
