"""Back to physical units: tensor files -> FITS / HDF5 with units, provenance and WCS."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from discoverydiff import physical
from discoverydiff.errors import InputError
from discoverydiff.ingest import ingest_dataset
from discoverydiff.normalize import NormalizationRecord, fit_normalization
from discoverydiff.store import read_attrs, read_tensor_file, write_tensor_file
from discoverydiff.units import HABING, parse_unit

HEIGHT, WIDTH = 50, 64
LONG_MODEL = "checkpoints/" + "very-long-directory-name/" * 4 + "ddpm-church-256.pt"


def _original_header():
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRVAL1"], header["CRVAL2"] = 83.8, -5.4
    # A rotated, sheared CD matrix: scaling only CDELT would not be enough.
    header["CD1_1"], header["CD1_2"], header["CD2_1"], header["CD2_2"] = -1e-3, 2e-4, 3e-4, 1e-3
    header["CRPIX1"], header["CRPIX2"] = 20.3, 31.7
    return header


@pytest.fixture
def tensors(tmp_path):
    """Ingested cubes whose planes hold each pixel's original (1-based) x and y coordinate.

    A 50 x 64 map is centre-cropped to 40 x 40 (top 5, left 12) and box-resampled to 20 x 20
    (factor 2), so every output pixel carries the original coordinate of its own centre.
    """
    inputs = tmp_path / "in"
    inputs.mkdir()
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    for i in range(3):
        cube = np.stack([x + 1.0, y + 1.0, np.full((HEIGHT, WIDTH), 5.0 + i)])
        hdu = fits.PrimaryHDU(cube, header=_original_header())
        hdu.header["BUNIT"] = "Habing"
        hdu.writeto(inputs / f"cloud_{i}.fits")
    cfg = {"inputs": [{"pattern": str(inputs / "*.fits"), "format": "fits"}],
           "normalize": {"transform": "linear", "lo": 0.0, "hi": 100.0}, "crop": {"pixels": 40}, "n_fewshot": 1,
           "n_validation": 1}
    images = tmp_path / "tensors.h5"
    ingest_dataset("orion", cfg, images, tmp_path / "rejected.csv", resolution=20, model_channels=3,
                   provenance={"config_sha256": "0123456789abcdef" * 4})
    # A samples file as the workflow writes it: the dataset's record plus the DDIM settings.
    source = read_tensor_file(images)
    samples = tmp_path / "samples.h5"
    attrs = {"normalization": source.attrs["normalization"], "dataset": "orion", "wcs": source.attrs["wcs"],
             "model": LONG_MODEL, "t0": 900, "n_steps": 80, "eta": 0.0, "seed": 3,
             "config_sha256": "0123456789abcdef" * 4, "n_accepted": 3}
    write_tensor_file(samples, source.x, source.names, kind="samples", attrs=attrs)
    return samples


def test_to_physical_maps_applies_the_record(tensors):
    values, record, attrs = physical.to_physical_maps(tensors)
    x = read_tensor_file(tensors).x
    np.testing.assert_allclose(values, record.to_physical(x))
    assert values.shape == (3, 3, 20, 20) and values.dtype == np.float64
    assert record.units == ["Habing"] * 3 and attrs["kind"] == "samples"
    _, _, _, names = physical.to_physical_maps(tensors, return_names=True)
    assert names == read_tensor_file(tensors).names


def test_fits_round_trip_units_and_provenance(tensors, tmp_path):
    values, record, attrs, names = physical.to_physical_maps(tensors, return_names=True)
    out = tmp_path / "out" / "samples.fits"
    assert physical.write_physical_fits(values, names, record, attrs, out) == [out]
    with fits.open(out) as hdul:
        assert len(hdul) == 2 + len(names) and hdul[-1].name == "CLIPPED"
        primary = hdul[0].header
        assert primary["MODEL"] == LONG_MODEL  # longer than one card: CONTINUE
        assert (primary["T0"], primary["NSTEPS"], primary["ETA"], primary["SEED"]) == (900, 80, 0.0, 3)
        assert primary["DATASET"] == "orion" and primary["KIND"] == "samples"
        assert primary["CFGSHA"] == "0123456789abcdef" * 4
        assert primary["TRANSFRM"] == "linear" and "DDVERS" in primary
        assert primary["HIERARCH DD N_ACCEPTED"] == 3
        assert NormalizationRecord.from_json(primary["DDNORM"]) == record
        for i, name in enumerate(names):
            hdu = hdul[1 + i]
            assert hdu.header["EXTNAME"] == physical._sanitize(name) == f"cloud_{i}.fits"
            assert hdu.header["SAMPNAME"] == name
            assert parse_unit(hdu.header["BUNIT"]) == HABING
            assert [hdu.header[f"CHANNEL{c}"] for c in range(3)] == record.channel_names
            assert hdu.data.dtype == np.dtype(">f4")
            np.testing.assert_allclose(hdu.data, values[i].astype(np.float32), rtol=0, atol=0)
            np.testing.assert_allclose(hdu.data, values[i], rtol=1e-6)


def test_fits_wcs_follows_the_crop_and_resampling(tensors, tmp_path):
    values, record, attrs, names = physical.to_physical_maps(tensors, return_names=True)
    out = tmp_path / "samples.fits"
    physical.write_physical_fits(values, names, record, attrs, out)
    original = WCS(_original_header())
    with fits.open(out) as hdul:
        header = hdul[1].header
        data = hdul[1].data.astype(np.float64)
    resampled = WCS(header, naxis=2)
    rows, cols = np.mgrid[0:20, 0:20]
    world = resampled.all_pix2world(np.column_stack([cols.ravel() + 1, rows.ravel() + 1]), 1)
    back = original.all_world2pix(world, 1)
    # The map itself says where each pixel came from: its planes are the original x and y.
    np.testing.assert_allclose(back[:, 0], data[0].ravel(), atol=1e-3)
    np.testing.assert_allclose(back[:, 1], data[1].ravel(), atol=1e-3)
    # twice the pixel: the CD matrix (as astropy writes it, PC x CDELT) doubles
    np.testing.assert_allclose(resampled.pixel_scale_matrix, 2 * original.pixel_scale_matrix, rtol=1e-12)


def test_resampled_wcs_crop_agrees_with_astropy_slicing():
    header = _original_header()
    wcs = {k: header[k] for k in header}
    geometry = {"crop_fraction": 1.0, "crop_pixels": 40, "resolution": 40, "source_shapes": [[HEIGHT, WIDTH]]}
    cropped = WCS(fits.Header(physical.resampled_wcs_header(wcs, geometry)))
    sliced = WCS(header)[5:45, 12:52]
    pix = np.array([[1.0, 1.0], [40.0, 40.0], [13.5, 27.25]])
    np.testing.assert_allclose(cropped.all_pix2world(pix, 1), sliced.all_pix2world(pix, 1), rtol=0, atol=1e-12)
    assert physical.resampled_wcs_header(wcs, {**geometry, "source_shapes": [[50, 64], [60, 60]]}) is None
    assert physical.resampled_wcs_header(None, geometry) is None


def test_per_sample_mode_writes_one_file_per_sample(tensors, tmp_path):
    values, record, attrs, names = physical.to_physical_maps(tensors, return_names=True)
    written = physical.write_physical_fits(values, names, record, attrs, mode="per_sample", out_dir=tmp_path / "maps")
    assert len(written) == len(names) == len(set(written))
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == sorted(p.name for p in written)
    for path, expected in zip(written, values):
        with fits.open(path) as hdul:
            assert [h.name for h in hdul] == ["PRIMARY", "CLIPPED"]
            assert hdul["CLIPPED"].data.shape == expected.shape
            assert hdul[0].header["BUNIT"] == "Habing" and hdul[0].header["T0"] == 900
            assert "CRPIX1" in hdul[0].header
            np.testing.assert_allclose(hdul[0].data, expected, rtol=1e-6)


def test_hdf5_writer_attrs(tensors, tmp_path):
    values, record, attrs, names = physical.to_physical_maps(tensors, return_names=True)
    out = physical.write_physical_hdf5(values, names, record, attrs, tmp_path / "samples_physical.h5")
    with h5py.File(out, "r") as h5:
        ds = h5["physical"]
        assert ds.dtype == np.float32 and ds.shape == values.shape
        np.testing.assert_allclose(ds[()], values, rtol=1e-6)
        assert [u.decode() if isinstance(u, bytes) else u for u in ds.attrs["units"]] == ["Habing"] * 3
        assert len(ds.attrs["channel_names"]) == 3 and ds.attrs["bunit"] == "Habing"
        for target in (ds.attrs, h5.attrs):
            assert target["model"] == LONG_MODEL and target["t0"] == 900 and target["seed"] == 3
            assert target["dataset"] == "orion" and target["kind"] == "samples"
            assert NormalizationRecord.from_json(target["normalization"]) == record
            scale = WCS(fits.Header(list(json.loads(target["wcs"]).items()))).pixel_scale_matrix
            np.testing.assert_allclose(scale, 2 * WCS(_original_header()).pixel_scale_matrix, rtol=1e-12)
        assert [n.decode() for n in h5["names"][()]] == names


def test_missing_normalization_record_names_the_file(tmp_path):
    path = tmp_path / "bare_samples.h5"
    write_tensor_file(path, np.zeros((2, 3, 8, 8), np.float32), ["a", "b"], kind="samples", attrs={"t0": 900})
    with pytest.raises(InputError, match="normalization") as err:
        physical.to_physical_maps(path)
    assert "bare_samples.h5" in str(err.value)
    assert "normalization" not in read_attrs(path)


def test_failed_write_leaves_no_partial_file(tensors, tmp_path, monkeypatch):
    values, record, attrs, names = physical.to_physical_maps(tensors, return_names=True)
    original_writeto = fits.HDUList.writeto
    calls = []

    def write_then_fail(self, name, *args, **kwargs):
        calls.append(name)
        original_writeto(self, name, *args, **kwargs)
        if len(calls) >= 2:
            raise OSError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", write_then_fail)
    out_dir = tmp_path / "atomic"
    out_dir.mkdir()
    existing = out_dir / "samples.fits"
    existing.write_bytes(b"previous run")
    physical.write_physical_fits(values, names, record, attrs, existing)  # first call succeeds
    existing.write_bytes(b"previous run")
    with pytest.raises(OSError, match="disk full"):
        physical.write_physical_fits(values, names, record, attrs, existing)
    assert existing.read_bytes() == b"previous run"
    calls.clear()
    with pytest.raises(OSError, match="disk full"):  # the second of three files fails
        physical.write_physical_fits(values, names, record, attrs, mode="per_sample", out_dir=out_dir)
    assert sorted(p.name for p in out_dir.iterdir()) == ["samples.fits"]


def test_galaxy_8bit_images_round_trip_to_rgb(tmp_path, rng):
    rgb = rng.integers(0, 256, size=(4, 3, 16, 16)).astype(np.float64)
    record = fit_normalization(rgb, "linear", lo=0.0, hi=255.0, channel_names=["R", "G", "B"])
    normalized, _ = record.to_normalized(rgb)
    path = tmp_path / "galaxies.h5"
    write_tensor_file(path, normalized, [f"gal_{i}.jpg" for i in range(4)], kind="samples",
                      attrs={"normalization": record.to_json()})
    values, back, _ = physical.to_physical_maps(path)
    np.testing.assert_allclose(values, rgb, atol=1e-4)
    image = physical.to_rgb_uint8(values, back)
    assert image.shape == (4, 16, 16, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, np.moveaxis(rgb, 1, -1).astype(np.uint8))


def test_channels_in_different_units_become_planes(tmp_path, rng):
    fields = np.exp(rng.normal(size=(2, 2, 8, 8)))
    record = fit_normalization(fields, "log10", units=["Habing", "cm-2"], channel_names=["G0", "N_H"],
                               model_channels=2)
    out = tmp_path / "two_fields.fits"
    physical.write_physical_fits(fields, ["m0", "m1"], record, {"dataset": "clouds"}, out)
    with fits.open(out) as hdul:
        assert [h.header["EXTNAME"] for h in hdul[1:]] == ["m0_G0", "m0_N_H", "m1_G0", "m1_N_H", "CLIPPED"]
        assert hdul["CLIPPED"].data.shape == fields.shape
        assert [h.header["BUNIT"] for h in hdul[1:3]] == ["Habing", "cm-2"]
        np.testing.assert_allclose(hdul[4].data, fields[1, 1], rtol=1e-6)


def test_gaussianized_dataset_ingests_and_goes_back_to_physical_units(tmp_path):
    # heavy-tailed G0 maps: ingest fits the normal-score map on the few-shot maps, the FITS output
    # carries the whole record (knots included) and the values it gives back are the inputs'
    rng = np.random.default_rng(4)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(4):
        g0 = np.exp(-np.exp(rng.normal(0.5, 0.6, (16, 16)))) * 1e3
        hdu = fits.PrimaryHDU(g0.astype(np.float32))
        hdu.header["BUNIT"] = "Habing"
        hdu.writeto(inputs / f"map_{i}.fits")
    cfg = {"inputs": [{"pattern": str(inputs / "*.fits"), "format": "fits"}], "channels": "replicate",
           "normalize": {"transform": "log10", "gaussianize": True, "percentiles": [0, 100]}, "n_fewshot": 3,
           "n_validation": 0}
    images = tmp_path / "tensors.h5"
    ingest_dataset("shadowed", cfg, images, tmp_path / "rejected.csv", resolution=16, model_channels=3)
    source = read_tensor_file(images)
    record = NormalizationRecord.from_json(source.attrs["normalization"])
    assert record.gaussianize is not None and record.fitted_on == "fewshot"
    fewshot = source.split == "fewshot"
    scores = source.x[fewshot][:, 0].ravel() * record.hi[0]
    assert abs(scores.mean()) < 0.05 and scores.std() == pytest.approx(1.0, abs=0.05)
    with h5py.File(images) as h5:
        kept = h5["physical"][:]
        clipped = h5["clipped"][:][:, :1].astype(bool)
    assert not clipped[fewshot].any()  # percentiles (0, 100) of the few-shot maps clip none of them
    samples = tmp_path / "samples.h5"
    write_tensor_file(samples, source.x, source.names, kind="samples", attrs={"normalization": source.attrs[
        "normalization"], "dataset": "shadowed"})
    values, rec, attrs, names = physical.to_physical_maps(samples, return_names=True)
    np.testing.assert_allclose(np.log10(values[~clipped]), np.log10(kept[~clipped]), atol=2e-5)
    out = tmp_path / "samples.fits"
    physical.write_physical_fits(values, names, rec, attrs, out)
    with fits.open(out) as hdul:
        assert NormalizationRecord.from_json(hdul[0].header["DDNORM"]) == record
        assert any("normal-score map" in str(card) for card in hdul[0].header["HISTORY"])
