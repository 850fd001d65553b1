"""Each reader on files of each form, made here with astropy, h5py and Pillow, and the bad ones."""

import h5py
import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from discoverydiff.errors import InputError
from discoverydiff.io import iter_hdf5, read_fits, read_hdf5, read_image, read_raw_fields


# ----------------------------------------------------------------------------- FITS
def test_fits_2d_primary_with_bunit(tmp_path, rng):
    data = rng.random((20, 30)).astype(np.float32) + 1
    hdu = fits.PrimaryHDU(data)
    hdu.header["BUNIT"] = "Habing"
    hdu.writeto(tmp_path / "a.fits")
    (field,) = read_fits(tmp_path / "a.fits")
    assert field.data.shape == (1, 20, 30) and field.data.dtype == np.float64
    np.testing.assert_array_equal(field.data[0], data)
    assert field.units == ["Habing"]


def test_fits_hdu_by_index_name_and_first_image(tmp_path, rng):
    a, b = rng.random((8, 8)), rng.random((8, 8)) + 5
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(a, name="NH"), fits.ImageHDU(b, name="G0")]).writeto(
        tmp_path / "multi.fits")
    np.testing.assert_allclose(read_fits(tmp_path / "multi.fits", hdu="G0")[0].data[0], b)
    np.testing.assert_allclose(read_fits(tmp_path / "multi.fits", hdu=1)[0].data[0], a)
    # the empty primary is skipped: the first HDU with image data is NH
    np.testing.assert_allclose(read_fits(tmp_path / "multi.fits")[0].data[0], a)
    both = read_fits(tmp_path / "multi.fits", hdu=["NH", "G0"])[0]
    assert both.data.shape == (2, 8, 8) and both.channel_names == ["NH", "G0"]


def test_fits_tile_compressed(tmp_path, rng):
    data = rng.random((32, 32)).astype(np.float32)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, name="G0", quantize_level=0.0,
                                                       compression_type="GZIP_2")]).writeto(tmp_path / "c.fits")
    np.testing.assert_array_equal(read_fits(tmp_path / "c.fits")[0].data[0], data)


def test_fits_bzero_bscale_and_blank(tmp_path):
    raw = np.arange(16, dtype=np.int16).reshape(4, 4)
    hdu = fits.PrimaryHDU(raw)
    hdu.header["BSCALE"], hdu.header["BZERO"], hdu.header["BLANK"] = 2.0, 10.0, 99
    hdu.writeto(tmp_path / "scaled.fits")
    np.testing.assert_allclose(read_fits(tmp_path / "scaled.fits")[0].data[0], raw * 2.0 + 10.0)
    raw[1, 1] = 99  # a BLANK pixel: undefined, becomes NaN
    hdu = fits.PrimaryHDU(raw)
    hdu.header["BSCALE"], hdu.header["BZERO"], hdu.header["BLANK"] = 2.0, 10.0, 99
    hdu.writeto(tmp_path / "blank.fits")
    data = read_fits(tmp_path / "blank.fits")[0].data[0]
    assert np.isnan(data[1, 1]) and np.isfinite(data).sum() == 15


def test_fits_cube_as_channels_or_stack(tmp_path, rng):
    cube = rng.random((3, 10, 12))
    hdu = fits.PrimaryHDU(cube)
    for i, band in enumerate("grz"):
        hdu.header[f"BAND{i}"] = band
    hdu.header["BUNIT"] = "nanomaggy"
    hdu.writeto(tmp_path / "cube.fits")
    (as_channels,) = read_fits(tmp_path / "cube.fits", cube_axis="channels")
    assert as_channels.data.shape == (3, 10, 12) and as_channels.channel_names == ["g", "r", "z"]
    stack = read_fits(tmp_path / "cube.fits", cube_axis="stack")
    assert len(stack) == 3 and stack[2].data.shape == (1, 10, 12) and stack[2].name.endswith("[2]")
    np.testing.assert_allclose(stack[1].data[0], cube[1])


@pytest.mark.parametrize("case,message", [
    ("truncated", "truncated"),
    ("garbage", "not a readable FITS file"),
    ("missing_hdu", "has no HDU 'G0'"),
    ("table_hdu", "holds no image data"),
    ("four_d", "4 dimensions"),
    ("no_image", "no HDU holds image data"),
])
def test_fits_bad_files(tmp_path, rng, case, message):
    path = tmp_path / f"{case}.fits"
    hdu = None
    if case in ("truncated", "garbage", "missing_hdu"):
        fits.PrimaryHDU(rng.random((64, 64)).astype(np.float32)).writeto(path)
        if case == "truncated":
            path.write_bytes(path.read_bytes()[:8000])
        elif case == "garbage":
            path.write_bytes(b"this is not FITS " * 300)
        else:
            hdu = "G0"
    elif case == "table_hdu":
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
            [fits.Column(name="a", format="E", array=np.ones(3))])]).writeto(path)
        hdu = 1
    elif case == "four_d":
        fits.PrimaryHDU(rng.random((2, 2, 8, 8))).writeto(path)
    else:
        fits.PrimaryHDU().writeto(path)
    before = path.read_bytes()
    with pytest.raises(InputError, match=message) as info:
        read_fits(path, hdu=hdu)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before  # opened read-only, never modified


# ----------------------------------------------------------------------------- HDF5
@pytest.mark.parametrize("layout,shape,n,c", [
    ("HW", (12, 14), 1, 1), ("NHW", (5, 12, 14), 5, 1), ("NCHW", (4, 3, 12, 14), 4, 3),
    ("CHW", (3, 12, 14), 1, 3), ("NHWC", (4, 12, 14, 3), 4, 3),
])
def test_hdf5_layouts(tmp_path, rng, layout, shape, n, c):
    data = rng.random(shape)
    with h5py.File(tmp_path / "s.h5", "w") as h5:
        h5.create_dataset("sim/G0", data=data).attrs["units"] = "Habing"
    fields = read_hdf5(tmp_path / "s.h5", "sim/G0", layout)
    assert len(fields) == n and fields[0].data.shape == (c, 12, 14)
    assert fields[0].units == ["Habing"] * c
    expected = {"HW": lambda d: d[None, None], "NHW": lambda d: d[:, None], "NCHW": lambda d: d,
                "CHW": lambda d: d[None], "NHWC": lambda d: np.moveaxis(d, -1, 1)}[layout](data)
    np.testing.assert_array_equal(np.stack([f.data for f in fields]), expected)


def test_hdf5_several_datasets_as_channels_with_file_level_units(tmp_path, rng):
    with h5py.File(tmp_path / "s.h5", "w") as h5:
        h5.attrs["units"] = "Habing"
        h5["a"], h5["b"], h5["c"] = rng.random((2, 8, 8)), rng.random((2, 8, 8)), rng.random((2, 8, 8))
        h5["c"].attrs["units"] = "erg s-1 cm-2"
    fields = read_hdf5(tmp_path / "s.h5", ["a", "b", "c"], "NHW")
    assert len(fields) == 2 and fields[0].data.shape == (3, 8, 8)
    assert fields[0].units == ["Habing", "Habing", "erg s-1 cm-2"] and fields[0].channel_names == ["a", "b", "c"]


@pytest.mark.parametrize("layout,shape", [("NHW", (37, 6, 5)), ("NCHW", (37, 2, 6, 5)), ("NHWC", (37, 6, 5, 2)),
                                          ("HW", (6, 5))])
@pytest.mark.parametrize("block_maps", [1, 4, 10, 100])
def test_hdf5_stacks_read_in_blocks_equal_the_whole_read(tmp_path, rng, layout, shape, block_maps):
    """Block by block (a block smaller than one map, a few maps, a remainder, the whole stack):
    the same maps as h5py's whole read of the dataset, transposed by numpy."""
    data = rng.random(shape).astype(np.float32)
    other = rng.random(shape).astype(np.float32)
    with h5py.File(tmp_path / "s.h5", "w") as h5:
        h5.create_dataset("G0", data=data, chunks=True).attrs["units"] = "Habing"
        h5["NH"] = other
    with h5py.File(tmp_path / "s.h5", "r") as h5:
        whole = h5["G0"][()].astype(np.float64)
    to_nchw = {"NHW": lambda d: d[:, None], "NCHW": lambda d: d, "NHWC": lambda d: np.moveaxis(d, -1, 1),
               "HW": lambda d: d[None, None]}[layout]
    per_map = 8 * int(np.prod(shape[-2:])) * (1 if layout in ("NHW", "HW") else 2)
    fields = list(iter_hdf5(tmp_path / "s.h5", "G0", layout, block_bytes=block_maps * per_map))
    np.testing.assert_array_equal(np.stack([f.data for f in fields]), to_nchw(whole))
    assert [f.name for f in fields] == [f"{tmp_path / 's.h5'}[{i}]" for i in range(len(fields))]
    if layout == "NHW":  # several datasets as channels, in blocks too
        both = list(iter_hdf5(tmp_path / "s.h5", ["G0", "NH"], layout, block_bytes=block_maps * 2 * per_map))
        np.testing.assert_array_equal(np.stack([f.data for f in both]), np.stack([data, other], axis=1))
        assert both[0].channel_names == ["G0", "NH"]


def test_a_damaged_stack_yields_its_readable_blocks_then_names_the_maps(tmp_path, rng):
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("G0", data=rng.random((64, 64, 64)), chunks=(1, 64, 64), compression="gzip")
    damaged = bytearray(path.read_bytes())
    middle = len(damaged) // 2
    damaged[middle:middle + 4000] = b"\xff" * 4000  # a map's compressed chunk halfway through the file
    path.write_bytes(bytes(damaged))
    maps = iter_hdf5(path, "G0", "NHW", block_bytes=8 * 64 * 64)
    read = []
    with pytest.raises(InputError, match=r"is unreadable at maps (\d+)\.\.\1, the file may be truncated") as info:
        for field in maps:
            read.append(field)
    assert str(path) in str(info.value) and 10 <= len(read) < 64
    assert info.match(rf"maps {len(read)}\.\.{len(read)}")  # the first map it could not read


@pytest.mark.parametrize("case,message", [
    ("missing_key", "has no dataset 'G0'; top-level keys are \\['other'\\]"),
    ("group", "is a group"),
    ("wrong_dims", "layout 'NCHW' is 4-D"),
    ("not_hdf5", "not a readable HDF5 file"),
    ("truncated", "(truncated|not a readable HDF5)"),
])
def test_hdf5_bad_files(tmp_path, rng, case, message):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as h5:
        if case == "missing_key":
            h5["other"] = rng.random((2, 4, 4))
        elif case == "group":
            h5.create_group("G0")["x"] = np.ones(3)
        else:
            h5["G0"] = rng.random((64, 64, 64))
    if case == "not_hdf5":
        path.write_bytes(b"nope" * 100)
    if case == "truncated":
        path.write_bytes(path.read_bytes()[:20000])
    with pytest.raises(InputError, match=message) as info:
        read_hdf5(path, "G0", "NCHW" if case == "wrong_dims" else "NHW")
    assert str(path) in str(info.value)


# ----------------------------------------------------------------------------- images
def test_jpeg_png_and_grey_png_read_as_rgb(tmp_path, rng):
    yy, xx = np.mgrid[0:40, 0:50]
    rgb = np.stack([xx * 5, yy * 6, (xx + yy) * 2], axis=-1).astype(np.uint8)  # smooth: JPEG keeps it
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    png = read_image(tmp_path / "a.png")[0]
    assert png.data.shape == (3, 40, 50) and png.channel_names == ["R", "G", "B"]
    np.testing.assert_array_equal(png.data, np.moveaxis(rgb, -1, 0))
    jpg = read_image(tmp_path / "a.jpg")[0]
    assert jpg.data.shape == (3, 40, 50) and np.abs(jpg.data - png.data).mean() < 3
    grey = read_image(tmp_path / "grey.png")[0]
    np.testing.assert_array_equal(grey.data[0], grey.data[2])


def test_bad_images(tmp_path, rng):
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "t.jpg")
    (tmp_path / "t.jpg").write_bytes((tmp_path / "t.jpg").read_bytes()[:600])
    with pytest.raises(InputError, match="truncated"):
        read_image(tmp_path / "t.jpg")
    (tmp_path / "x.jpg").write_text("not an image")
    with pytest.raises(InputError, match="not an image Pillow can read"):
        read_image(tmp_path / "x.jpg")
    with pytest.raises(InputError, match="does not exist"):
        read_raw_fields(tmp_path / "missing.jpg", {"format": "image"})
