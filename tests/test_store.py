"""Tensor files: round trip, atomic writes, streaming, and errors on bad files."""

import h5py
import numpy as np
import pytest

from discoverydiff.errors import InputError
from discoverydiff.store import (
    TensorFileWriter,
    iter_batches,
    read_attrs,
    read_tensor_file,
    write_tensor_file,
)


def test_round_trip_with_attrs_and_split(tmp_path, rng):
    x = rng.normal(size=(5, 3, 4, 4)).astype(np.float32)
    names = [f"f{i}.fits" for i in range(5)]
    split = ["fewshot", "test", "fewshot", "test", "test"]
    write_tensor_file(tmp_path / "t.h5", x, names, kind="images",
                      attrs={"seed": 3, "normalization": {"transform": "log10"}, "wcs": None}, split=split)
    ts = read_tensor_file(tmp_path / "t.h5")
    np.testing.assert_array_equal(ts.x, x)
    assert ts.names == names and ts.attrs["seed"] == 3 and ts.attrs["kind"] == "images"
    assert ts.attrs["normalization"] == {"transform": "log10"} and ts.attrs["wcs"] is None
    assert "discoverydiff_version" in read_attrs(tmp_path / "t.h5")
    few = read_tensor_file(tmp_path / "t.h5", split="fewshot")
    assert few.names == ["f0.fits", "f2.fits"]
    np.testing.assert_array_equal(few.x, x[[0, 2]])


def test_failed_write_leaves_no_file(tmp_path, rng):
    with pytest.raises(RuntimeError, match="boom"):
        with TensorFileWriter(tmp_path / "t.h5", (4, 1, 2, 2), "latents") as out:
            out.write(0, np.zeros((2, 1, 2, 2)), ["a", "b"])
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="never written"):
        with TensorFileWriter(tmp_path / "t.h5", (4, 1, 2, 2), "latents") as out:
            out.write(0, np.zeros((2, 1, 2, 2)), ["a", "b"])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="non-finite"):
        with TensorFileWriter(tmp_path / "t.h5", (1, 1, 2, 2), "latents") as out:
            out.write(0, np.full((1, 1, 2, 2), np.nan), ["a"])
    assert list(tmp_path.iterdir()) == []


def test_streaming_batches_cover_the_split_in_order(tmp_path, rng):
    x = rng.normal(size=(7, 1, 3, 3)).astype(np.float32)
    split = ["fewshot", "test"] * 3 + ["fewshot"]
    write_tensor_file(tmp_path / "t.h5", x, [str(i) for i in range(7)], kind="images", split=split)
    got = list(iter_batches(tmp_path / "t.h5", batch_size=3, split="fewshot"))
    assert [o for o, _, _ in got] == [0, 3]
    np.testing.assert_array_equal(np.concatenate([b for _, b, _ in got]), x[[0, 2, 4, 6]])
    assert sum((n for _, _, n in got), []) == ["0", "2", "4", "6"]


def test_batches_read_only_their_rows(tmp_path, rng):
    """A scattered split is read row by row, not as the span from its first row to its last."""
    from discoverydiff import store

    x = rng.normal(size=(200, 1, 2, 2)).astype(np.float32)
    split = ["fewshot" if i in (3, 197) else "test" for i in range(200)]
    write_tensor_file(tmp_path / "t.h5", x, [str(i) for i in range(200)], kind="images", split=split)
    asked = []

    class Recorder:  # wraps the h5py dataset and records each selection made on it
        def __init__(self, dataset):
            self.dataset = dataset

        def __getitem__(self, key):
            asked.append(key)
            return self.dataset[key]

    with h5py.File(tmp_path / "t.h5") as h5:
        np.testing.assert_array_equal(store._read_selected(Recorder(h5["x"]), np.array([3, 197])), x[[3, 197]])
        np.testing.assert_array_equal(store._read_selected(Recorder(h5["x"]), np.array([5, 6, 7])), x[5:8])
    assert list(asked[0]) == [3, 197] and asked[1] == slice(5, 8)
    (batch,) = [b for _, b, _ in iter_batches(tmp_path / "t.h5", batch_size=2, split="fewshot")]
    np.testing.assert_array_equal(batch, x[[3, 197]])


@pytest.mark.parametrize("case,message", [
    ("missing", "does not exist"), ("garbage", "not a readable HDF5 file"),
    ("no_x", "datasets 'x' and 'names' are required"), ("bad_shape", "must be \\(N, C, H, W\\)"),
    ("nan", "contains NaN or inf"),
])
def test_bad_tensor_files(tmp_path, case, message):
    path = tmp_path / "t.h5"
    if case == "garbage":
        path.write_bytes(b"x" * 100)
    elif case != "missing":
        with h5py.File(path, "w") as h5:
            if case != "no_x":
                shape = (2, 2, 2) if case == "bad_shape" else (2, 1, 2, 2)
                h5["x"] = np.full(shape, np.nan) if case == "nan" else np.zeros(shape)
                h5["names"] = np.array([b"a", b"b"])
    with pytest.raises(InputError, match=message) as info:
        read_tensor_file(path)
    assert str(path) in str(info.value)


def test_atomic_path_replaces_files_and_directories_only_on_success(tmp_path):
    from discoverydiff.store import atomic_path

    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".out.txt.")
        tmp.write_text("first")
        assert not target.exists()  # nothing under the final name while writing
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "first" and sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]

    folder = tmp_path / "ckpt"
    for content in ("old", "new"):
        with atomic_path(folder) as tmp:
            tmp.mkdir()
            (tmp / "weights").write_text(content)
    assert (folder / "weights").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "sub"]
    with pytest.raises(RuntimeError), atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("partial")
        raise RuntimeError("killed")
    assert (folder / "weights").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "sub"]


def test_writer_builds_on_a_staged_file_and_leaves_nothing_on_failure(tmp_path, rng):
    from discoverydiff.store import read_rows

    staged = rng.normal(size=(4, 1, 4, 4)).astype(np.float32)

    def stage(path):
        with h5py.File(path, "w") as h5:
            h5.create_dataset("physical", data=staged, maxshape=(None, 1, 4, 4), chunks=(2, 1, 4, 4))

    stage(tmp_path / "staged.h5")
    x = rng.normal(size=(4, 3, 4, 4)).astype(np.float32)
    with TensorFileWriter(tmp_path / "t.h5", x.shape, "images", start_from=tmp_path / "staged.h5") as out:
        out.dataset("physical", {"units": ["Habing"]})
        out.write(0, x, [f"r{i}" for i in range(4)])
    assert not (tmp_path / "staged.h5").exists()  # moved, not copied
    np.testing.assert_array_equal(read_rows(tmp_path / "t.h5", "physical"), staged)
    np.testing.assert_array_equal(read_tensor_file(tmp_path / "t.h5").x, x)
    with h5py.File(tmp_path / "t.h5") as h5:
        assert h5["physical"].attrs["units"] == '["Habing"]'
    stage(tmp_path / "staged.h5")
    with pytest.raises(ValueError, match="has 4 rows"), \
            TensorFileWriter(tmp_path / "u.h5", (5, 3, 4, 4), "images", start_from=tmp_path / "staged.h5") as out:
        out.dataset("physical")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.h5"]  # no partial file, no staged file
