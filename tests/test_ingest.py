"""Ingest end to end on small real files: shapes, record, split, units, bad inputs, skip."""

import csv

import h5py
import numpy as np
import pytest
import yaml
from astropy.io import fits
from conftest import sha256_tree
from PIL import Image

from discoverydiff.errors import ConfigError, InputError
from discoverydiff.ingest import (
    LUPTON_MAX_CLIPPED_SHARE,
    DatasetSpec,
    default_gaussianize,
    ingest_dataset,
    resample,
    resample_matrix,
)
from discoverydiff.normalize import NormalizationRecord
from discoverydiff.store import read_rows, read_tensor_file


def _ingest(tmp_path, cfg, **kw):
    out = tmp_path / "results"
    kw.setdefault("resolution", 16)
    kw.setdefault("seed", 7)
    return ingest_dataset("demo", cfg, out / "tensors.h5", out / "rejected.csv", **kw), out


def _field_cfg(fits_dir, **extra):
    cfg = {"inputs": [{"format": "fits", "pattern": str(fits_dir / "*.fits")}],
           "normalize": {"transform": "log10", "percentiles": [0, 100], "gaussianize": False},
           "channels": "replicate", "n_fewshot": 5, "n_validation": 1}
    cfg.update(extra)
    return cfg


def test_fields_are_gaussianized_unless_the_config_says_otherwise(tmp_path, fits_dir):
    cfg = _field_cfg(fits_dir)
    del cfg["normalize"]["gaussianize"]  # null: a field's default
    _, out = _ingest(tmp_path / "default", cfg)
    record = NormalizationRecord.from_json(read_tensor_file(out / "tensors.h5").attrs["normalization"])
    assert record.gaussianize is not None and len(record.gaussianize["knots"][0]) == 129
    _, out = _ingest(tmp_path / "off", _field_cfg(fits_dir))  # false: off
    off = NormalizationRecord.from_json(read_tensor_file(out / "tensors.h5").attrs["normalization"])
    assert off.gaussianize is None
    assert default_gaussianize(None, "galaxy", "linear") is False
    assert default_gaussianize(None, "field", "lupton") is False
    assert default_gaussianize(33, "galaxy", "linear") == 33


def test_fits_dataset_round_trips_to_physical(tmp_path, fits_dir, lognormal_maps):
    before = sha256_tree(fits_dir)
    result, out = _ingest(tmp_path, _field_cfg(fits_dir))
    assert sha256_tree(fits_dir) == before  # inputs untouched
    ts = read_tensor_file(out / "tensors.h5")
    assert ts.x.shape == (8, 3, 16, 16) and ts.x.dtype == np.float32
    assert ts.x.min() == pytest.approx(-1) and ts.x.max() == pytest.approx(1)
    assert (ts.split == "fewshot").sum() == 5 and (ts.split == "validation").sum() == 1
    assert (ts.split == "test").sum() == 2 and ts.attrs["n_test"] == 2
    assert ts.attrs["kind"] == "images" and ts.attrs["seed"] == 7
    assert ts.attrs["wcs"]["CTYPE1"] == "RA---TAN"  # shared WCS kept for the physical stage
    record = NormalizationRecord.from_json(ts.attrs["normalization"])
    assert record.units == ["Habing"] and record.geometry["resample"] == "box"
    assert record.geometry["source_shapes"] == [[48, 48]]
    expected = np.stack([resample(m[None], 16, "box") for m in lognormal_maps.astype(np.float32)])
    # the unclipped maps are kept as they were resampled, tails and all
    stored = read_rows(out / "tensors.h5", "physical")
    np.testing.assert_allclose(stored, expected, rtol=1e-6)
    # and x is exactly their normalization (the float32 maps kept are what was normalized)
    np.testing.assert_array_equal(record.to_normalized(stored)[0], ts.x)
    # lo/hi are the percentiles of the few-shot maps only: the held-out ones stay unseen
    fewshot = np.log10(expected[ts.split == "fewshot"])
    assert record.fitted_on == "fewshot"
    assert record.lo == [pytest.approx(fewshot.min())] and record.hi == [pytest.approx(fewshot.max())]
    # every clipped pixel is in the mask; the record's share is the few-shot rows' (percentiles 0-100: none),
    # every split's share is in the file's attrs
    mask = read_rows(out / "tensors.h5", "clipped")
    assert mask.dtype == np.uint8 and mask.shape == ts.x.shape
    logs = np.log10(stored.astype(np.float64))
    outside = (logs < record.lo[0]) | (logs > record.hi[0])
    np.testing.assert_array_equal(mask[:, 0].astype(bool), outside[:, 0])
    assert (mask == mask[:, :1]).all()  # replicate: one mask per field, on every model channel
    assert record.clipped_fraction == pytest.approx(mask[ts.split == "fewshot"].mean()) == 0
    shares = ts.attrs["clipped_share"]
    assert shares["all"] == pytest.approx(mask.mean()) and shares["all"] > 0
    assert shares["test"] == pytest.approx(mask[ts.split == "test"].mean())
    back = record.to_physical(ts.x)
    np.testing.assert_allclose(back[~outside], expected[~outside], rtol=1e-5)
    with open(out / "rejected.csv") as fh:
        assert list(csv.reader(fh)) == [["file", "reason"]]


def test_split_is_seeded(tmp_path, fits_dir):
    splits = []
    for seed, sub in [(1, "a"), (1, "b"), (2, "c")]:
        _, out = _ingest(tmp_path / sub, _field_cfg(fits_dir), seed=seed)
        splits.append(read_tensor_file(out / "tensors.h5").split)
    assert (splits[0] == splits[1]).all() and not (splits[0] == splits[2]).all()


def test_units_are_converted_to_the_dataset_unit(tmp_path, lognormal_maps):
    d = tmp_path / "in"
    d.mkdir()
    for i, unit, factor in [(0, "Habing", 1.0), (1, "erg s-1 cm-2", 1.6e-3)]:
        hdu = fits.PrimaryHDU(lognormal_maps[i] * factor)
        hdu.header["BUNIT"] = unit
        hdu.writeto(d / f"{i}.fits")
    _, out = _ingest(tmp_path, _field_cfg(d, n_fewshot=1, n_validation=0, units="Habing"))
    ts = read_tensor_file(out / "tensors.h5")
    assert NormalizationRecord.from_json(ts.attrs["normalization"]).units == ["Habing"]
    back = read_rows(out / "tensors.h5", "physical")
    np.testing.assert_allclose(back[1], resample(lognormal_maps[1][None], 16, "box"), rtol=1e-5)
    (d / "2.fits").unlink(missing_ok=True)
    hdu = fits.PrimaryHDU(lognormal_maps[2])
    hdu.header["BUNIT"] = "K"
    hdu.writeto(d / "2.fits")
    with pytest.raises(InputError, match="'K', which does not convert to the dataset's unit 'Habing'"):
        _ingest(tmp_path / "again", _field_cfg(d, n_fewshot=1, n_validation=0, units="Habing"))


def _write_bad(d, case, good):
    path = d / f"bad_{case}.fits"
    data = good.copy()
    if case == "nan":
        data[3, 3] = np.nan
    elif case == "inf":
        data[0, 0] = np.inf
    elif case == "nonpositive":
        data[5, 5] = -1.0
    elif case == "tiny":
        data = data[:10, :10]
    fits.PrimaryHDU(data).writeto(path)
    if case == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    return path


BAD_CASES = {
    "nan": "1 NaN \\(or BLANK\\) and 0 infinite pixel",
    "inf": "0 NaN \\(or BLANK\\) and 1 infinite pixel",
    "nonpositive": "1 non-positive pixel.*log10",
    "tiny": "image is 10x10 pixels, smaller than the crop of 40 pixels",
    "truncated": "is truncated",
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_fails_naming_file_and_writes_nothing(tmp_path, fits_dir, lognormal_maps, case):
    bad = _write_bad(fits_dir, case, lognormal_maps[0])
    cfg = _field_cfg(fits_dir, crop={"pixels": 40})
    with pytest.raises(InputError, match=BAD_CASES[case]) as info:
        _ingest(tmp_path, cfg)
    assert str(bad) in str(info.value)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_skip_writes_rejected_csv_and_ingests_the_rest(tmp_path, fits_dir, lognormal_maps):
    bad = [_write_bad(fits_dir, case, lognormal_maps[0]) for case in sorted(BAD_CASES)]
    result, out = _ingest(tmp_path, _field_cfg(fits_dir, crop={"pixels": 40}, on_bad_input="skip"))
    assert result.n_images == 8 and result.n_rejected == len(bad)
    with open(out / "rejected.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["file"] for r in rows) == sorted(str(p) for p in bad)
    assert all(r["reason"] for r in rows)
    assert read_tensor_file(out / "tensors.h5").x.shape[0] == 8


def test_empty_pattern_and_missing_hdf5_key(tmp_path, fits_dir):
    cfg = _field_cfg(fits_dir)
    cfg["inputs"].append({"format": "fits", "pattern": str(tmp_path / "nowhere/*.fits")})
    with pytest.raises(InputError, match="matched no files"):
        _ingest(tmp_path, cfg)
    with h5py.File(tmp_path / "s.h5", "w") as h5:
        h5["NH"] = np.ones((3, 8, 8))
    cfg = {"inputs": [{"format": "hdf5", "pattern": str(tmp_path / "s.h5"), "dataset": "G0"}],
           "channels": "replicate", "n_fewshot": 1, "n_validation": 1}
    with pytest.raises(InputError, match="has no dataset 'G0'"):
        _ingest(tmp_path, cfg)
    assert not (tmp_path / "results" / "tensors.h5").exists()


def test_hdf5_and_fits_sources_combine(tmp_path, fits_dir, lognormal_maps):
    with h5py.File(tmp_path / "stack.h5", "w") as h5:
        h5.create_dataset("G0", data=lognormal_maps[:3] * 2).attrs["units"] = "Habing"
    cfg = _field_cfg(fits_dir)
    cfg["inputs"].append({"format": "hdf5", "pattern": str(tmp_path / "stack.h5"), "dataset": "G0",
                          "layout": "NHW"})
    result, out = _ingest(tmp_path, cfg)
    ts = read_tensor_file(out / "tensors.h5")
    assert ts.x.shape[0] == 11 and ts.names[-1].endswith("stack.h5[2]")


def test_a_bad_map_of_a_stack_is_rejected_alone(tmp_path, fits_dir, lognormal_maps):
    """skip: a stack's map with a NaN goes to rejected.csv by its index; the maps after it are kept."""
    stack = lognormal_maps[:5] * 2
    stack[1, 3, 3] = np.nan
    with h5py.File(tmp_path / "stack.h5", "w") as h5:
        h5.create_dataset("G0", data=stack).attrs["units"] = "Habing"
    cfg = _field_cfg(fits_dir, on_bad_input="skip")
    cfg["inputs"] = [{"format": "hdf5", "pattern": str(tmp_path / "stack.h5"), "dataset": "G0"}]
    cfg["n_fewshot"] = 2
    result, out = _ingest(tmp_path, cfg)
    assert result.n_images == 4 and result.n_rejected == 1
    assert read_tensor_file(out / "tensors.h5").names == [f"{tmp_path / 'stack.h5'}[{i}]" for i in (0, 2, 3, 4)]
    with open(out / "rejected.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [{"file": f"{tmp_path / 'stack.h5'}[1]", "reason": "1 NaN (or BLANK) and 0 infinite pixel(s)"}]


def test_read_ahead_threads_give_the_one_thread_result(tmp_path):
    """Cutouts decoded and resampled on a thread pool: the same tensor file as one reader thread."""
    rng = np.random.default_rng(4)
    (tmp_path / "img").mkdir()
    for i in range(9):
        Image.fromarray(rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)).save(tmp_path / "img" / f"{i}.jpg")
    cfg = {"kind": "galaxy", "inputs": [{"format": "image", "pattern": str(tmp_path / "img" / "*.jpg")}],
           "crop": {"fraction": 0.6}, "resample": "lanczos", "channels": "identity",
           "normalize": {"transform": "linear", "lo": 0, "hi": 255}, "n_fewshot": 3, "n_validation": 2}
    runs = {}
    for workers in (1, 4):
        _, out = _ingest(tmp_path / f"w{workers}", cfg, workers=workers)
        runs[workers] = read_tensor_file(out / "tensors.h5"), read_rows(out / "tensors.h5", "physical")
    np.testing.assert_array_equal(runs[1][0].x, runs[4][0].x)
    np.testing.assert_array_equal(runs[1][1], runs[4][1])
    assert runs[1][0].names == runs[4][0].names
    # and a cutout read as float64 and resampled by hand gives the same map as the uint8 read-ahead
    first = np.moveaxis(np.asarray(Image.open(tmp_path / "img" / "0.jpg").convert("RGB"), dtype=np.float64), -1, 0)
    side = int(round(0.6 * 40))
    top, left = (40 - side) // 2, (44 - side) // 2
    expected = resample(first[:, top:top + side, left:left + side], 16, "lanczos")
    np.testing.assert_allclose(runs[4][1][runs[4][0].names.index(str(tmp_path / "img" / "0.jpg"))], expected,
                               rtol=1e-6)


def test_the_splits_must_leave_a_test_map(tmp_path, fits_dir):
    with pytest.raises(ConfigError, match="8 map.*too few for n_fewshot = 7, n_validation = 1"):
        _ingest(tmp_path, _field_cfg(fits_dir, n_fewshot=7))
    with pytest.raises(ConfigError, match="n_test = 3"):
        _ingest(tmp_path, _field_cfg(fits_dir, n_fewshot=5, n_test=3))
    # the maps were staged on disk before the count was known: nothing of them is left
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_split_sizes_and_the_few_shot_maps_do_not_depend_on_the_other_sizes(tmp_path, fits_dir):
    _, out = _ingest(tmp_path / "a", _field_cfg(fits_dir, n_fewshot=3, n_validation=2, n_test=2))
    first = read_tensor_file(out / "tensors.h5")
    assert [int((first.split == s).sum()) for s in ("fewshot", "validation", "test", "unused")] == [3, 2, 2, 1]
    _, out = _ingest(tmp_path / "b", _field_cfg(fits_dir, n_fewshot=3, n_validation=0))
    second = read_tensor_file(out / "tensors.h5")
    assert [int((second.split == s).sum()) for s in ("fewshot", "validation", "test")] == [3, 0, 5]
    fewshot = [n for n, s in zip(first.names, first.split) if s == "fewshot"]
    assert fewshot == [n for n, s in zip(second.names, second.split) if s == "fewshot"]
    # the record, which travels into every later file, is fitted on and counts the few-shot maps alone
    record = NormalizationRecord.from_json(first.attrs["normalization"])
    assert record.clipped_fraction == 0.0 and record.fitted_on == "fewshot"
    shares = first.attrs["clipped_share"]
    assert set(shares) == {"all", "fewshot", "validation", "test", "unused"} and shares["fewshot"] == 0.0


def test_ingest_memory_does_not_hold_the_dataset(tmp_path, fits_dir, monkeypatch):
    """Maps are staged and written in blocks: with a one-map block, no array of more than the
    few-shot maps (or one map) reaches the normalization."""
    from discoverydiff import ingest as ingest_module
    from discoverydiff.normalize import NormalizationRecord

    seen = []
    original = NormalizationRecord._normalize

    def spy(self, physical):
        seen.append(np.asarray(physical).shape[0])
        return original(self, physical)

    monkeypatch.setattr(NormalizationRecord, "_normalize", spy)
    monkeypatch.setattr(ingest_module, "STAGING_BLOCK_BYTES", 1)
    result, _ = _ingest(tmp_path, _field_cfg(fits_dir, n_fewshot=3))
    assert result.n_images == 8 and max(seen) <= 3 and seen.count(1) == 8  # 8 one-map blocks
    ts = read_tensor_file(result.tensors_path)
    assert len(ts.names) == 8 and not list(result.tensors_path.parent.glob(".*staging*"))


@pytest.fixture
def galaxy_dir(tmp_path, rng):
    d = tmp_path / "gz"
    (d / "images").mkdir(parents=True)
    rows = []
    for i in range(10):
        gid = 100000 + i
        img = np.clip(rng.normal(60, 10, (424, 424, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(d / "images" / f"{gid}.jpg")
        smooth = 0.9 if i % 2 else 0.1
        rows.append({"GalaxyID": gid, "Class1.1": smooth, "Class1.2": 1 - smooth - 0.02, "Class1.3": 0.02})
    import pandas as pd

    pd.DataFrame(rows).to_csv(d / "catalogue.csv", index=False)
    return d


def test_galaxy_cutouts_with_catalogue_query(tmp_path, galaxy_dir):
    cfg = {"inputs": [{"format": "image", "pattern": str(galaxy_dir / "images/*.jpg")}],
           "catalogue": {"path": str(galaxy_dir / "catalogue.csv"), "query": "`Class1.1` > 0.8"},
           "crop": {"fraction": 207 / 424}, "resample": "lanczos",
           "normalize": {"transform": "linear", "lo": 0, "hi": 255}, "n_fewshot": 3, "n_validation": 1}
    result, out = _ingest(tmp_path, cfg, resolution=23)
    ts = read_tensor_file(out / "tensors.h5")
    assert ts.x.shape == (5, 3, 23, 23)
    assert sorted(n.split("/")[-1] for n in ts.names) == [f"{100000 + i}.jpg" for i in (1, 3, 5, 7, 9)]
    record = NormalizationRecord.from_json(ts.attrs["normalization"])
    assert record.geometry["crop_fraction"] == pytest.approx(207 / 424)
    # crop 207 of 424 then 9x downscale: the noise std of 10 drops to about 10/9
    assert 40 < record.to_physical(ts.x).mean() < 80
    # relative paths, catalogue included, are resolved from base_dir as the workflow's are from its directory
    relative = {**cfg, "inputs": [{"format": "image", "pattern": "gz/images/*.jpg"}],
                "catalogue": {**cfg["catalogue"], "path": "gz/catalogue.csv"}}
    kept = ingest_dataset("gz", relative, tmp_path / "r" / "tensors.h5", tmp_path / "r" / "rejected.csv",
                          resolution=23, base_dir=tmp_path)
    assert kept.n_images == 5
    cfg["catalogue"]["query"] = "`Class9` > 1"
    with pytest.raises(ConfigError, match="catalogue query .*Class9"):
        _ingest(tmp_path / "q", cfg, resolution=23)
    cfg["catalogue"] = {"path": str(galaxy_dir / "catalogue.csv"), "id_column": "objid"}
    with pytest.raises(InputError, match="has no id column 'objid'"):
        _ingest(tmp_path / "c", cfg, resolution=23)


def test_resample_box_is_pillow_box_for_integer_factors_and_conserves_the_mean(rng):
    field = np.exp(rng.normal(0, 2, (1, 96, 96)))
    pillow = np.asarray(Image.fromarray(field[0].astype(np.float32), mode="F").resize((24, 24), Image.Resampling.BOX))
    np.testing.assert_allclose(resample(field, 24, "box")[0], pillow, rtol=1e-5)
    odd = resample(field, 37, "box")  # non-integer factor: exact area overlaps
    assert odd.mean() == pytest.approx(field.mean(), rel=1e-12) and odd.min() > 0


@pytest.mark.parametrize("method,pil", [("bilinear", "BILINEAR"), ("bicubic", "BICUBIC"), ("lanczos", "LANCZOS")])
def test_resample_kernels_match_pillow(rng, method, pil):
    yy, xx = np.mgrid[0:120, 0:90]
    field = np.sin(xx / 7.0) + np.cos(yy / 11.0)
    ours = resample(field[None], 32, method)[0]
    theirs = np.asarray(Image.fromarray(field.astype(np.float32), mode="F").resize(
        (32, 32), getattr(Image.Resampling, pil)))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert np.allclose(resample_matrix(120, 32, method).sum(axis=1), 1)


def test_schema_defaults_match_the_library_defaults():
    schema = yaml.safe_load(open("config/schema.yaml"))
    props = schema["$defs"]["dataset"]["properties"]
    spec = DatasetSpec(inputs=[{}])
    assert props["resample"]["default"] == spec.resample
    assert props["channels"]["default"] == spec.channels
    assert props["n_fewshot"]["default"] == spec.n_fewshot
    assert props["n_validation"]["default"] == spec.n_validation and props["n_test"]["default"] == spec.n_test
    assert props["on_bad_input"]["default"] == spec.on_bad_input
    assert props["crop"]["properties"]["fraction"]["default"] == spec.crop_fraction
    assert props["normalize"]["properties"]["transform"]["default"] == spec.normalize["transform"]
    lupton = props["normalize"]["properties"]["lupton"]["properties"]
    assert lupton["max_clipped_share"]["default"] == LUPTON_MAX_CLIPPED_SHARE

