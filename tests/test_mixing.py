"""The mixing ceiling: the pairs scheme applied to maps, against closed forms and the workflow's files."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from discoverydiff.discovery.mixing import main, mixing_table, pair_mixtures
from discoverydiff.errors import InputError
from discoverydiff.ingest import ingest_dataset
from discoverydiff.physical import real_physical_maps
from discoverydiff.stats.onepoint import pdf_moments
from discoverydiff.store import read_tensor_file, write_tensor_file


def test_weight_zero_and_one_give_the_two_maps(rng):
    maps = rng.normal(size=(6, 2, 8, 8)) + 3.0  # a shared level: the common direction matters
    out = pair_mixtures(maps, [1, 4], [3, 0], [0.0, 1.0])
    np.testing.assert_allclose(out[0], maps[1], atol=1e-10)
    np.testing.assert_allclose(out[1], maps[0], atol=1e-10)
    with pytest.raises(ValueError, match="distinct"):
        pair_mixtures(maps, [2], [2], [0.5])


@pytest.mark.parametrize("w", [0.5, 0.25])
def test_mixture_of_independent_fields_has_the_cumulant_kurtosis(w):
    # Independent zero-mean Laplace fields (excess kurtosis 3): the other maps' mean is nearly
    # orthogonal to both, the residuals are nearly orthogonal, so the mixture is
    # sin((1 - w) pi / 2) X + sin(w pi / 2) Y, whose excess kurtosis is 3 (c_a^4 + c_b^4) by the
    # additivity of cumulants of independent variables (c_a^2 + c_b^2 = 1).
    g = np.random.default_rng(5)
    maps = g.laplace(size=(8, 400_000))
    mixed = pair_mixtures(maps, [0, 2, 4], [1, 3, 5], [w, w, w])
    ca, cb = np.sin((1 - w) * np.pi / 2), np.sin(w * np.pi / 2)
    expected = 3.0 * (ca**4 + cb**4)
    measured = [stats.kurtosis(m) for m in mixed]
    assert np.allclose(measured, expected, atol=0.15), (measured, expected)
    assert np.allclose([stats.kurtosis(m) for m in maps[:3]], 3.0, atol=0.15)  # the inputs are what we say


def _dataset(tmp_path, fits_dir, weights):
    cfg = {"inputs": [{"format": "fits", "pattern": str(fits_dir / "*.fits")}],
           "normalize": {"transform": "log10", "percentiles": [2, 98]}, "channels": "replicate",
           "n_fewshot": 3, "n_validation": 1}
    root = tmp_path / "results"
    ingest_dataset("demo", cfg, root / "tensors.h5", root / "rejected.csv", resolution=16, seed=7)
    x = read_tensor_file(root / "tensors.h5", "fewshot").x
    sources = [[0, 1], [1, 2], [2, 0]]
    names = [f"discovered_{k:05d}<-t{a}+t{b}@w={w:.3f}" for k, ((a, b), w) in enumerate(zip(sources, weights))]
    record = {"scheme": "pairs", "sources": sources, "weights": sorted(set(weights))}
    write_tensor_file(root / "discovered_latents.h5", x, names, "latents", {"acceptance": record})
    return root


def test_table_reads_the_kept_pairs_and_weights(tmp_path, fits_dir):
    # weight 0 for every pair: the mixtures are the three few-shot maps themselves (in bounds)
    root = _dataset(tmp_path, fits_dir, [0.0, 0.0, 0.0])
    table = mixing_table(root, min_weights=[0.4], draws=5).set_index("set")
    for moment in ("mean", "std", "skewness", "kurtosis"):
        assert table.loc["mixtures_of_discovered_pairs", moment] == pytest.approx(
            table.loc["fewshot_in_bounds", moment], abs=1e-5)
    # the unclipped targets (2-98 percentile bounds clip some pixels) spread wider
    assert table.loc["fewshot", "std"] > table.loc["fewshot_in_bounds", "std"]
    row = table.loc["random_pairs_min_weight_0.4"]
    assert row["kurtosis_p05"] <= row["kurtosis"] <= row["kurtosis_p95"]
    assert row["kurtosis_p05"] < row["kurtosis_p95"]  # five different draws of pairs and weights


def test_fewshot_row_is_the_unclipped_values_moments(tmp_path, fits_dir):
    root = _dataset(tmp_path, fits_dir, [0.4, 0.5, 0.6])
    table = mixing_table(root, min_weights=[], draws=1).set_index("set")
    physical = real_physical_maps(root / "tensors.h5", "fewshot")[0]
    expected = pdf_moments(physical)
    assert table.loc["fewshot", "kurtosis"] == pytest.approx(expected["kurtosis"])
    assert table.loc["fewshot", "mean"] == pytest.approx(expected["mean"])


def test_a_prior_scheme_record_is_refused_with_the_file_named(tmp_path, fits_dir, capsys):
    root = _dataset(tmp_path, fits_dir, [0.5, 0.5, 0.5])
    x = read_tensor_file(root / "discovered_latents.h5").x
    write_tensor_file(root / "discovered_latents.h5", x, ["a", "b", "c"], "latents",
                      {"acceptance": {"scheme": "prior", "sources": [0, 1, 2]}})
    with pytest.raises(InputError, match="discovered_latents.h5.*pairs"):
        mixing_table(root, min_weights=[], draws=1)
    assert main([str(root)]) == 1
    assert "discovered_latents.h5" in capsys.readouterr().err
