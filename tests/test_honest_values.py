"""Nothing clipped is hidden: Lupton and percentile clipping counted and kept, file units
overridable, WCS carried by astropy.wcs through crop and resampling."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from discoverydiff import physical
from discoverydiff.errors import ConfigError, InputError
from discoverydiff.ingest import ingest_dataset
from discoverydiff.normalize import NormalizationRecord, lupton_forward, lupton_lost
from discoverydiff.store import read_attrs, read_rows, read_tensor_file

# The README's DECaLS colour settings (red channel first: z, r, g).
DECALS = {"Q": 8.0, "stretch": 0.5, "band_scales": [0.025, 0.01385, 0.0066]}
STIS_RAW = Path(fits.__file__).parent / "tests" / "data" / "o4sp040b0_raw.fits"


def _decals_cubes(directory: Path, rng, n=20, size=64) -> np.ndarray:
    """g, r, z cubes in nanomaggies: sky noise sigma 0.01 and an exponential core of peak 5."""
    directory.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2.0
    cubes = []
    for i in range(n):
        r = np.hypot(x - rng.uniform(-3, 3), y - rng.uniform(-3, 3))
        core = 5.0 * np.exp(-r / rng.uniform(2.0, 5.0))
        colour = np.array([1.0, 0.6, 0.3])[:, None, None]  # z brightest, g faintest
        cube = core[None] * colour + rng.normal(0.0, 0.01, (3, size, size))
        hdu = fits.PrimaryHDU(cube)
        hdu.header["BUNIT"] = "nanomaggy"
        hdu.header["BAND0"], hdu.header["BAND1"], hdu.header["BAND2"] = "z", "r", "g"
        hdu.writeto(directory / f"cutout_{i:02d}.fits")
        cubes.append(cube)
    return np.stack(cubes)


def _decals_cfg(directory: Path, **lupton) -> dict:
    return {"inputs": [{"format": "fits", "pattern": str(directory / "*.fits"), "cube_axis": "channels"}],
            "normalize": {"transform": "lupton", "lo": 0, "hi": 1, "lupton": {**DECALS, **lupton}},
            "resample": "box", "n_fewshot": 8, "n_validation": 1}


def _ingest(tmp_path, cfg, name="decals", resolution=32):
    out = tmp_path / "results"
    result = ingest_dataset(name, cfg, out / "tensors.h5", out / "rejected.csv", resolution=resolution, seed=3)
    return result, out / "tensors.h5"


def test_lupton_loss_is_measured_on_astropys_output(rng):
    bands = np.abs(rng.normal(0.002, 0.0005, (2, 3, 8, 8)))
    bands[0, 2, 1, 1] = -0.05               # g below the minimum: make_lupton_rgb sets it to 0
    bands[1, :, 4, 4] = [50.0, 40.0, 30.0]  # every band far above 1 after the stretch: rescaled
    params = {**DECALS, "minimum": [0.0, 0.0, 0.0]}
    rgb = lupton_forward(bands, **params)
    assert rgb[0, 2, 1, 1] == 0 and rgb[1, :, 4, 4].max() == pytest.approx(1.0)
    lost = lupton_lost(bands, rgb, **params)
    assert lost[0, :, 1, 1].all() and lost[1, :, 4, 4].all()  # the zeroed pixel's mean moved: all bands lost
    assert lost.sum() == 6                   # and nothing else


def test_lupton_clipping_is_counted_kept_and_flagged(tmp_path, rng):
    cubes = _decals_cubes(tmp_path / "in", rng)
    result, tensors = _ingest(tmp_path, _decals_cfg(tmp_path / "in", max_clipped_share=1.0))
    record = result.record
    mask = read_rows(tensors, "clipped")
    x = read_tensor_file(tensors).x
    assert mask.dtype == np.uint8 and mask.shape == x.shape
    assert record.clipped_fraction >= 0.05
    split = read_tensor_file(tensors).split  # the record's shares are the few-shot maps' it was fitted on
    assert abs(record.clipped_fraction - mask[split == "fewshot"].mean()) <= 0.005
    assert read_attrs(tensors)["clipped_share"]["all"] == pytest.approx(mask.mean())
    assert record.transform_clipped_fraction == pytest.approx(record.clipped_fraction)  # lo, hi = 0, 1
    # the unclipped maps are kept beside the tensors: the sky stays unbiased, the core at 5
    kept = read_rows(tensors, "physical").astype(np.float64)
    assert kept.max() > 1.0 and abs(kept.mean() - cubes.mean()) < 0.01 * cubes.mean()
    # to_physical gives every unclipped pixel back within 1 %, and the flagged ones are exactly
    # those it cannot give back
    back = record.to_physical(x)
    clipped = mask.astype(bool)
    error = np.abs(back - kept) / (np.abs(kept) + np.asarray(DECALS["band_scales"])[None, :, None, None])
    assert error[~clipped].max() < 0.01
    core = kept.max(axis=1, keepdims=True) > 1.0  # the bright core: saturated in the stretch
    assert core.any() and clipped[np.broadcast_to(core, clipped.shape)].all()
    assert (error[clipped] > 0.01).mean() > 0.9
    # the physical FITS of these rows flag the same pixels
    out = tmp_path / "physical.fits"
    physical.export_physical(tensors, out)
    with fits.open(out) as hdul:
        np.testing.assert_array_equal(hdul["CLIPPED"].data, mask)
        history = "".join(str(v) for v in hdul[0].header["HISTORY"])
        assert "lupton" in history and "inside the transform" in history


def test_lupton_refuses_a_lossy_stretch_naming_both_options(tmp_path, rng):
    _decals_cubes(tmp_path / "in", rng, n=10)
    with pytest.raises(ConfigError, match="max_clipped_share = 0.05") as info:
        _ingest(tmp_path, _decals_cfg(tmp_path / "in"))
    message = str(info.value)
    assert "transform: asinh" in message and "larger max_clipped_share" in message
    assert not (tmp_path / "results" / "tensors.h5").exists()
    # the suggested per-band asinh (softening stretch * scale / Q) is invertible: nothing lost
    softening = [DECALS["stretch"] * s / DECALS["Q"] for s in DECALS["band_scales"]]
    assert f"softening: {[round(s, 6) for s in softening]}" in message
    cfg = _decals_cfg(tmp_path / "in")
    cfg["normalize"] = {"transform": "asinh", "softening": softening, "percentiles": [0, 100]}
    result, tensors = _ingest(tmp_path / "asinh", cfg)
    assert result.record.transform_clipped_fraction == 0
    # percentiles of the few-shot maps only, so only validation and test pixels can fall outside
    split = read_tensor_file(tensors).split
    assert read_rows(tensors, "clipped", "fewshot").sum() == 0
    kept = read_rows(tensors, "physical").astype(np.float64)
    back = result.record.to_physical(read_tensor_file(tensors).x)
    keep = ~read_rows(tensors, "clipped").astype(bool)
    np.testing.assert_allclose(back[keep], kept[keep], rtol=1e-4, atol=1e-6)
    assert (split == "validation").sum() == 1 and (split == "test").sum() == 1


def test_hst_stis_counts_ingest_with_the_dataset_units(tmp_path, caplog):
    assert fits.getheader(STIS_RAW, 1)["BUNIT"] == "COUNTS"
    cfg = {"inputs": [{"format": "fits", "pattern": str(STIS_RAW), "hdu": 1},
                      {"format": "fits", "pattern": str(STIS_RAW), "hdu": 4}],
           "normalize": {"transform": "asinh"}, "crop": {"pixels": 44}, "channels": "replicate", "n_fewshot": 1,
           "n_validation": 0}
    with pytest.raises(InputError, match="'COUNTS' is not a unit astropy understands.*units: count"):
        _ingest(tmp_path / "plain", cfg, name="stis", resolution=22)
    with caplog.at_level(logging.WARNING, logger="discoverydiff.ingest"):
        result, tensors = _ingest(tmp_path / "count", {**cfg, "units": "count"}, name="stis", resolution=22)
    assert result.record.units == ["ct"] and result.n_images == 2
    assert any("o4sp040b0_raw.fits" in r.getMessage() and "'COUNTS'" in r.getMessage() for r in caplog.records)
    with fits.open(STIS_RAW) as hdul:  # the 44 x 62 SCI planes, centre-cropped to 44 x 44 and halved
        sci = hdul[1].data[:, 9:53].astype(np.float64)
    expected = sci.reshape(22, 2, 22, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(read_rows(tensors, "physical")[0, 0], expected, rtol=1e-6)


def _sip_header() -> fits.Header:
    header = fits.Header()
    cards = {"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRVAL1": 150.1, "CRVAL2": 2.2,
             "CRPIX1": 40.5, "CRPIX2": 33.0, "CD1_1": -2.0e-4, "CD1_2": 3.0e-5, "CD2_1": 2.0e-5, "CD2_2": 2.0e-4,
             "A_ORDER": 2, "A_2_0": 3e-5, "A_0_2": -2e-5, "A_1_1": 1e-5,
             "B_ORDER": 2, "B_2_0": -1e-5, "B_0_2": 4e-5, "B_1_1": 2e-5,
             "RADESYS": "ICRS", "DATE-OBS": "2019-03-04T05:06:07", "PV2_1": 0.0}
    for key, value in cards.items():
        header[key] = value
    return header


def test_wcs_with_sip_and_date_survives_crop_and_resampling(tmp_path, rng):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        fits.PrimaryHDU(np.exp(rng.normal(size=(60, 80))), header=_sip_header()).writeto(d / f"m{i}.fits")
    cfg = {"inputs": [{"format": "fits", "pattern": str(d / "*.fits")}], "crop": {"pixels": 48},
           "normalize": {"transform": "log10"}, "channels": "replicate", "n_fewshot": 1, "n_validation": 1}
    _, tensors = _ingest(tmp_path, cfg, name="cosmos", resolution=20)
    out = tmp_path / "maps.fits"
    physical.export_physical(tensors, out)
    with fits.open(out) as hdul:
        header = hdul[1].header
        assert header["DATE-OBS"].startswith("2019-03-04T05:06:07") and header["A_ORDER"] == 2
        resampled = WCS(header, naxis=2)
        assert resampled.sip is not None
    original = WCS(_sip_header())
    # output pixel centre p (1-based) lies at input position s (p - 1/2) + 1/2 + offset
    scale, top, left = 48 / 20, (60 - 48) // 2, (80 - 48) // 2
    p = np.array([[1.0, 1.0], [20.0, 20.0], [7.0, 15.0], [20.0, 1.0]])
    inputs = scale * (p - 0.5) + 0.5 + np.array([left, top])
    np.testing.assert_allclose(resampled.all_pix2world(p, 1), original.all_pix2world(inputs, 1), rtol=0, atol=1e-9)


def test_differing_wcs_is_dropped_with_a_logged_reason(tmp_path, rng, caplog):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        header = _sip_header()
        header["CRVAL1"] = 150.1 + 0.01 * i
        fits.PrimaryHDU(np.exp(rng.normal(size=(40, 40))), header=header).writeto(d / f"m{i}.fits")
    cfg = {"inputs": [{"format": "fits", "pattern": str(d / "*.fits")}],
           "normalize": {"transform": "log10"}, "channels": "replicate", "n_fewshot": 1, "n_validation": 1}
    with caplog.at_level(logging.WARNING, logger="discoverydiff.ingest"):
        _, tensors = _ingest(tmp_path, cfg, name="mosaic", resolution=20)
    assert read_attrs(tensors)["wcs"] is None
    assert any("WCS differ" in r.getMessage() and "CRVAL1" in r.getMessage() and "m1.fits" in r.getMessage()
               for r in caplog.records)


def test_samples_at_the_bounds_are_flagged_in_fits_and_hdf5(tmp_path, rng):
    record = NormalizationRecord("log10", {}, [0.0], [3.0], ["Habing"], ["G0"], channel_mode="replicate")
    y = rng.uniform(-0.9, 0.9, (2, 3, 8, 8)).astype(np.float32)
    y[0, :, 2, 3] = 1.0     # overshoot, stored clipped at +1
    y[1, 1, 5, 5] = -1.0    # one replicated channel at -1: the averaged value holds a clipped one
    mask = record.clip_mask(y)
    assert mask.shape == (2, 1, 8, 8) and mask.sum() == 2 and mask[0, 0, 2, 3] and mask[1, 0, 5, 5]
    values = record.to_physical(y)
    assert values[0, 0, 2, 3] == pytest.approx(1e3)  # at hi: its true value is unknown
    written = physical.write_physical_fits(values, ["a", "b"], record, {"kind": "samples"}, tmp_path / "s.fits",
                                           clipped=mask)
    with fits.open(written[0]) as hdul:
        np.testing.assert_array_equal(hdul["CLIPPED"].data, mask[:, 0].astype(np.uint8))
        assert hdul["CLIPPED"].header["NCLIPPED"] == 2
        assert any("2 of 128 pixels" in str(v) for v in hdul[0].header["HISTORY"])
    h5_path = physical.write_physical_hdf5(values, ["a", "b"], record, {"kind": "samples"}, tmp_path / "s.h5",
                                           clipped=mask)
    import h5py

    with h5py.File(h5_path, "r") as h5:
        np.testing.assert_array_equal(h5["clipped"][()], mask.astype(np.uint8))
        assert "sit at a clip bound" in h5.attrs["history"]


def test_statistics_see_the_real_tails_and_count_clipping_per_set(tmp_path, fits_dir, lognormal_maps):
    from scipy.stats import wasserstein_distance

    from discoverydiff.plots.fields import plot_pdfs
    from discoverydiff.stats import dataset_statistics
    from discoverydiff.stats.comparison import PDF_BINS
    from discoverydiff.store import write_tensor_file

    cfg = {"inputs": [{"format": "fits", "pattern": str(fits_dir / "*.fits")}], "channels": "replicate",
           "normalize": {"transform": "log10", "percentiles": [5, 95], "gaussianize": False}, "n_fewshot": 5,
           "n_validation": 1}
    result, tensors = _ingest(tmp_path, cfg, name="clouds", resolution=16)
    record = result.record
    images = read_tensor_file(tensors)
    samples = images.x[:4].copy()
    samples[:, :, :2] = 1.0  # two rows of every sample stored at the upper clip bound
    attrs = {"normalization": images.attrs["normalization"], "model": "test"}
    write_tensor_file(tmp_path / "samples.h5", samples, [f"s{i}" for i in range(4)], "samples", attrs)
    comparison = dataset_statistics(tensors, {"samples": tmp_path / "samples.h5"}, "field",
                                    {"permutations": 0}).comparison
    share = comparison[comparison["statistic"] == "clipped_share"].set_index("set")
    assert sorted(share.index) == ["discovered", "fewshot", "validation"]  # the samples file is the discovered set
    mask = read_rows(tensors, "clipped")[:, 0].astype(bool)
    assert share.loc["fewshot", "value"] == pytest.approx(mask[images.split == "fewshot"].mean())
    test_share = mask[images.split == "test"].mean()
    assert share.loc["fewshot", "real_value"] == pytest.approx(test_share) and test_share > 0  # the test maps'
    assert share.loc["discovered", "value"] == pytest.approx(((np.abs(samples[:, 0]) >= 1 - 1e-6)).mean())
    # the real maps' PDF distance is between their unclipped values (scipy's W1, to within the width of a
    # bin of the streamed histograms: the real maps' log range over PDF_BINS)
    kept = np.log10(read_rows(tensors, "physical")[:, 0].astype(np.float64))
    w1 = comparison.query("set == 'fewshot' and statistic == 'pdf_w1_log10'")["value"].item()
    test = kept[images.split == "test"]
    exact = wasserstein_distance(kept[images.split == "fewshot"].ravel(), test.ravel())
    assert abs(w1 - exact) <= (test.max() - test.min()) / PDF_BINS and abs(w1 - exact) < 1e-3 * exact
    # and the PDF figure's few-shot histogram reaches past the record's lo/hi
    files = plot_pdfs(tensors, {"samples": tmp_path / "samples.h5"}, tmp_path / "pdfs")
    import pandas as pd

    table = pd.read_csv(files.data)
    width = (table["right"] - table["left"]).max()
    few = table[(table["set"] == "fewshot") & (table["density"] > 0)]
    assert few["left"].min() < record.lo[0] - width and few["right"].max() > record.hi[0] + width
    gen = table[(table["set"] == "discovered") & (table["density"] > 0)]
    assert gen["left"].min() >= record.lo[0] - width and gen["right"].max() <= record.hi[0] + width
