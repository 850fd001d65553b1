"""Streaming statistics: sets read a block at a time give the numbers of the whole arrays.

The one-point statistics of a streamed set come from per-map histograms on a shared grid and
power sums (stats.onepoint.ValueGrid); they are checked against scipy on the pooled values.
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy.stats import kurtosis, skew, wasserstein_distance

from discoverydiff import stats
from discoverydiff.errors import InputError
from discoverydiff.stats.onepoint import ValueGrid
from discoverydiff.stats.sources import RealMaps, SampleMaps
from discoverydiff.stats.summaries import draw_weights


def _grid_w1(grid, maps, reference, weights=None):
    counts, tails, _ = grid.summarize(maps)
    reference_counts, reference_tails, _ = grid.summarize(reference)
    assert not reference_tails[:, [0, 2]].any()  # the grid covers the reference
    w = np.ones(len(maps)) if weights is None else weights
    return grid.w1(w @ counts, w @ tails, reference_counts.sum(axis=0))


@pytest.mark.parametrize("n_bins", [16, 256, 4096])
def test_value_grid_w1_is_scipys_to_one_bin_tails_included(rng, n_bins):
    reference = rng.normal(0.0, 1.0, (6, 500))
    maps = rng.normal(0.4, 1.8, (9, 700))  # wider: values below and above the grid on both sides
    maps[0, :3] = reference.max()  # the grid's upper edge itself
    grid = ValueGrid(reference.min(), reference.max(), n_bins)
    got = _grid_w1(grid, maps, reference)
    exact = wasserstein_distance(maps.ravel(), reference.ravel())
    assert abs(got - exact) <= grid.width
    if n_bins == 4096:
        assert abs(got - exact) < 1e-4 * exact


def test_value_grid_weights_pool_maps_as_a_bootstrap_draw_does(rng):
    reference = rng.lognormal(0.0, 1.0, (4, 300))
    maps = rng.lognormal(0.3, 1.2, (7, 300))
    grid = ValueGrid(reference.min(), reference.max(), 512, shift=reference.mean())
    idx = np.array([0, 0, 3, 6, 6, 6, 2])
    weights = draw_weights(idx, len(maps))
    pooled = maps[idx].ravel()  # the draw's maps, repeated as drawn
    assert _grid_w1(grid, maps, reference, weights) == pytest.approx(_grid_w1(grid, maps[idx], reference), rel=1e-12)
    assert abs(_grid_w1(grid, maps, reference, weights) - wasserstein_distance(pooled, reference.ravel())) <= grid.width
    moments = grid.moments(weights @ grid.summarize(maps)[2])
    assert moments["mean"] == pytest.approx(pooled.mean(), rel=1e-12)
    assert moments["std"] == pytest.approx(pooled.std(), rel=1e-10)
    assert moments["skewness"] == pytest.approx(skew(pooled), rel=1e-9)
    assert moments["kurtosis"] == pytest.approx(kurtosis(pooled), rel=1e-9)


def test_value_grid_refuses_bad_bounds():
    with pytest.raises(ValueError, match="finite bounds"):
        ValueGrid(0.0, np.inf)
    assert ValueGrid(2.0, 2.0, 8).width > 0  # a constant reference still gets a grid


def _field_sets(rng, n=12, size=16):
    fewshot = np.exp(rng.normal(size=(8, 1, size, size)))
    test = np.exp(rng.normal(size=(n + 3, 1, size, size)))
    sets = {"discovered": np.exp(1.2 * rng.normal(size=(n, 1, size, size))),
            "b": np.exp(0.9 * rng.normal(size=(n, 1, size, size)))}
    masks = {"discovered": rng.random((n, 1, size, size)) < 0.05, "test": np.zeros(test.shape, bool)}
    return fewshot, test, sets, masks


def test_compare_sets_gives_the_same_table_one_map_at_a_time(rng):
    fewshot, test, sets, masks = _field_sets(rng)
    flat = lambda x: np.log10(np.asarray(x)).reshape(len(x), -1)  # noqa: E731
    kwargs = dict(kind="field", fewshot=fewshot, clip_masks=masks, precision_features=flat, n_boot=30,
                  n_permutations=20, return_novelty=True, return_spectra=True, return_two_sample=True)
    whole = stats.compare_sets(test, sets, **kwargs)
    one_by_one = stats.compare_sets(test, sets, block_bytes=1, **kwargs)
    for a, b in zip(whole, one_by_one):
        pd.testing.assert_frame_equal(a, b, rtol=1e-12)
    table = whole[0].set_index(["set", "statistic"])
    # the streamed PDF statistics against scipy on the pooled log10 values, the test maps the reference
    logs = np.log10(sets["discovered"]).ravel()
    real_logs = np.log10(test).ravel()
    width = (real_logs.max() - real_logs.min()) / stats.comparison.PDF_BINS
    assert abs(table.loc[("discovered", "pdf_w1_log10"), "value"] - wasserstein_distance(logs, real_logs)) <= width
    assert table.loc[("discovered", "log10_skewness_difference"), "value"] == pytest.approx(
        skew(logs) - skew(real_logs), rel=1e-9)
    assert table.loc[("discovered", "clipped_share"), "value"] == pytest.approx(masks["discovered"].mean())
    assert table.loc[("discovered", "clipped_share"), "real_value"] == 0.0


def _tensor_files(tmp_path, rng, n_heldout=9, size=16):
    from discoverydiff.normalize import fit_normalization
    from discoverydiff.store import TensorFileWriter, write_tensor_file

    maps = np.exp(rng.normal(size=(8 + n_heldout, 1, size, size)))
    record = fit_normalization(maps[:8], "log10", units=["Habing"], channel_names=["G0"], channel_mode="replicate")
    x, mask = record.to_normalized(maps)
    attrs = {"normalization": record.to_json()}
    tensors = tmp_path / "tensors.h5"
    with TensorFileWriter(tensors, x.shape, "images", attrs) as writer:
        writer.write(0, x, [f"map_{i}" for i in range(len(x))])
        writer.add_dataset("physical", maps.astype(np.float32))
        writer.add_dataset("clipped", record.to_model_channels(mask).astype(np.uint8))
        # test rows scattered through the file, as a random split leaves them
        split = np.array(["test"] * len(x), dtype=object)
        split[[0, 2, 3, 7, 9, 11, 12, 14]] = "fewshot"
        split[[1, 16]] = "validation"
        writer.add_dataset("split", split)
    samples = rng.uniform(-1.0, 1.0, (10, 3, size, size)).astype(np.float32)
    write_tensor_file(tmp_path / "samples.h5", samples, [f"sample_{i:05d}" for i in range(10)], "samples", attrs)
    return tensors, tmp_path / "samples.h5", maps, split, record


def test_file_sources_read_the_rows_of_a_split_block_by_block(tmp_path, rng):
    tensors, samples_path, maps, split, record = _tensor_files(tmp_path, rng)
    held = RealMaps(tensors, "test", record)
    assert held.names == [f"map_{i}" for i in np.flatnonzero(split == "test")]
    streamed = np.concatenate([values for _, values, _ in held.blocks(block_bytes=3 * 16 * 16 * 8)])
    np.testing.assert_array_equal(streamed, maps[split == "test"].astype(np.float32))
    values, _ = held.rows([4, 0, 2])  # any order, as a pairing asks
    np.testing.assert_array_equal(values, maps[split == "test"][[4, 0, 2]].astype(np.float32))
    samples = SampleMaps(samples_path, record)
    values, mask = samples.rows(np.arange(10))
    assert values.shape == (10, 1, 16, 16) and mask.shape == (10, 1, 16, 16)
    first = SampleMaps(samples_path, record, limit=4)  # every set is judged at the same size
    assert len(first) == 4 and first.names == samples.names[:4]
    np.testing.assert_array_equal(first.rows(np.arange(4))[0], values[:4])


def test_dataset_statistics_does_not_depend_on_the_block_size(tmp_path, rng):
    tensors, samples_path, *_ = _tensor_files(tmp_path, rng)
    sets = {"samples": samples_path, "base_samples": samples_path}
    small = stats.dataset_statistics(tensors, sets, "field", {"bootstrap": 20, "permutations": 10, "block_mb": 1e-4})
    large = stats.dataset_statistics(tensors, sets, "field", {"bootstrap": 20, "permutations": 10})
    for name in ("comparison", "spectra", "novelty", "two_sample", "selection"):
        pd.testing.assert_frame_equal(getattr(small, name), getattr(large, name), rtol=1e-12)


def test_a_sample_file_with_nan_is_refused_naming_it(tmp_path, rng):
    from discoverydiff.store import write_tensor_file

    tensors, samples_path, *_ = _tensor_files(tmp_path, rng)
    bad = rng.uniform(-1.0, 1.0, (4, 3, 16, 16)).astype(np.float32)
    write_tensor_file(tmp_path / "bad.h5", bad, [f"s{i}" for i in range(4)], "samples", {})
    with h5py.File(tmp_path / "bad.h5", "r+") as h5:  # written elsewhere: the writer refuses NaN
        h5["x"][2, 1, 3, 3] = np.nan
    with pytest.raises(InputError, match=r"bad\.h5.*NaN"):
        stats.dataset_statistics(tensors, {"samples": tmp_path / "bad.h5"}, "field", {"bootstrap": 0})
    write_tensor_file(tmp_path / "one.h5", bad[:, :1], [f"s{i}" for i in range(4)], "samples", {})
    with pytest.raises(InputError, match=r"one\.h5.*1 channel"):
        stats.dataset_statistics(tensors, {"samples": tmp_path / "one.h5"}, "field", {"bootstrap": 0})
