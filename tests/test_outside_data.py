"""benchmarks/outside_data.py: the outside field and galaxy sets have what they claim."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_inputs import benchmark_script


@pytest.fixture(scope="module")
def outside():
    return benchmark_script("outside_data")


def test_grf_variance_is_powerbox_s_variance(outside):
    expected = outside.grf_variance(32, -3.2)
    fields = [outside._powerbox(32, lambda k: k**-3.2, s).delta_x() for s in range(300)]
    measured = float(np.mean([f.var() for f in fields]))
    # the variance of one field's variance is large for a steep spectrum: 300 fields give a few per cent
    assert measured == pytest.approx(expected, rel=0.08)


def test_fields_are_log_normal_with_the_asked_spectrum(outside, tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    from discoverydiff.stats.power import fit_power_law, radial_power_spectrum, slope_fit_range

    manifest = outside._write(tmp_path / "field", False,
                              lambda d: outside.write_fields(d, 24, 64, -3.2, 1.5, 0.4, seed=3))
    assert manifest["n"] == 24 and len(manifest["sha256"]) == 24
    maps = []
    for name in manifest["files"]:
        with fits.open(tmp_path / "field" / name) as hdul:
            header, data = hdul[0].header, hdul[0].data
        assert header["BUNIT"] == "Habing" and WCS(header).has_celestial
        assert data.dtype.kind == "f" and data.dtype.itemsize == 4 and (data > 0).all()
        maps.append(np.log10(data.astype(np.float64)))
    maps = np.array(maps)
    assert maps.mean() == pytest.approx(1.5, abs=0.1)
    assert maps.std() == pytest.approx(0.4, rel=0.25)  # a steep spectrum: each map's variance scatters
    k, power = radial_power_spectrum(maps, boxlength=1.0)[:2]
    slope = fit_power_law(k, power.mean(axis=0), *slope_fit_range(maps.shape[1:]))[0]
    assert slope == pytest.approx(-3.2, abs=0.2)
    again = outside.write_fields(tmp_path / "again", 2, 64, -3.2, 1.5, 0.4, seed=3)  # same seed, same maps
    for name in again["files"]:
        assert fits.getdata(tmp_path / "again" / name).tobytes() == fits.getdata(tmp_path / "field" / name).tobytes()


def test_galaxies_are_distinct_bright_sources_inside_the_image(outside):
    from skimage import data

    image = data.hubble_deep_field()
    chosen, detected = outside.find_galaxies(image, 80, 60, 40.0)
    assert detected > 1000 and len(chosen) >= 96
    flux = [c["flux"] for c in chosen]
    assert flux == sorted(flux, reverse=True)
    xy = np.array([(c["x"], c["y"]) for c in chosen])
    gaps = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1]) + 1e9 * np.eye(len(xy))
    assert gaps.min() >= 40.0
    for c in chosen:
        assert c["area"] >= 60
        assert 0 <= c["x0"] and c["x0"] + 80 <= image.shape[1] and 0 <= c["y0"] and c["y0"] + 80 <= image.shape[0]


def test_an_existing_folder_is_refused_and_a_failure_leaves_nothing(outside, tmp_path):
    (tmp_path / "field").mkdir()
    with pytest.raises(FileExistsError, match="--force"):
        outside._write(tmp_path / "field", False, lambda d: {})

    def fails(folder):
        folder.mkdir()
        (folder / "half.fits").write_bytes(b"")
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        outside._write(tmp_path / "other", False, fails)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["field"]
    assert outside.main([str(tmp_path), "--only", "field", "--n-fields", "0"]) == 1  # exits non-zero, says why
