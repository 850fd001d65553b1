"""Novelty statistics against independent implementations (scipy) and the k-NN metrics (prdc-checked)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import bootstrap, wasserstein_distance

from discoverydiff import stats
from discoverydiff.fidelity import knn_manifold_metrics


def test_max_cosine_matches_scipy_and_mscore_counts_above_0_6(rng):
    samples, refs = rng.normal(size=(40, 30)), rng.normal(size=(7, 30))
    samples[:5] = refs[:5] + 0.1 * rng.normal(size=(5, 30))  # five near-copies
    expected = (1.0 - cdist(samples, refs, metric="cosine")).max(axis=1)
    got = stats.max_cosine_similarity(samples, refs, center_on_references=False)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert stats.mscore(got) == pytest.approx(np.mean(expected > 0.6))
    assert stats.mscore(got) == pytest.approx(5 / 40)
    # centring on the references' mean: the common offset no longer makes every map alike
    offset = samples + 50.0
    assert stats.mscore(stats.max_cosine_similarity(offset, refs + 50.0, center_on_references=False)) == 1.0
    centred = stats.max_cosine_similarity(offset, refs + 50.0, center_on_references=True)
    mean = (refs + 50.0).mean(axis=0)
    np.testing.assert_allclose(centred, (1.0 - cdist(offset - mean, refs + 50.0 - mean, "cosine")).max(axis=1))


def test_novelty_w1_is_scipys_wasserstein_and_sources_are_read_from_names(rng):
    a, b = rng.uniform(0, 1, 30), rng.uniform(0.2, 1, 17)
    assert stats.novelty_w1(a, b) == pytest.approx(wasserstein_distance(a, b), rel=1e-12)
    names = ["discovered_00000<-m1.fits+m4.fits@w=0.412", "discovered_00001<-m1.fits@w=0.048", "base_3"]
    assert stats.novelty.sources_of(names[0]) == ["m1.fits", "m4.fits"]
    assert stats.source_share(names, [f"m{i}.fits" for i in range(8)]) == 2 / 8
    assert np.isnan(stats.source_share(["sample_1"], ["m1.fits"]))


def test_bootstrap_interval_agrees_with_scipys_percentile_bootstrap(rng):
    values = rng.exponential(2.0, 200)
    ours = stats.bootstrap_interval(lambda idx: {"mean": values[idx].mean()}, len(values), n_boot=4000, seed=1)
    theirs = bootstrap((values,), np.mean, n_resamples=4000, method="percentile", random_state=2).confidence_interval
    assert ours["mean"][0] == pytest.approx(theirs.low, abs=0.05)
    assert ours["mean"][1] == pytest.approx(theirs.high, abs=0.05)


def test_comparison_novelty_rows_and_table(rng):
    fewshot = rng.normal(size=(8, 1, 16, 16)) ** 2 + 1.0
    test = rng.normal(size=(10, 1, 16, 16)) ** 2 + 1.0
    copies = fewshot[[0, 0, 1, 2, 3, 3]] * (1 + 1e-3 * rng.normal(size=(6, 1, 16, 16)))
    fresh = rng.normal(size=(12, 1, 16, 16)) ** 2 + 1.0
    flat = lambda x: np.log10(np.asarray(x)).reshape(len(x), -1)  # noqa: E731
    table, novelty = stats.compare_sets(
        test, {"copies": copies, "fresh": fresh, "fewshot": fewshot}, kind="field", fewshot=fewshot,
        names={"fewshot": [f"t{i}" for i in range(8)], "copies": [f"c{i}<-t{j}@w=0.01" for i, j in
                                                                   enumerate([0, 0, 1, 2, 3, 3])]},
        precision_features=flat, n_boot=50, compare_with="fresh", return_novelty=True)
    assert list(novelty.columns)[:5] == ["set", "name", "d1", "d2", "nearest"]
    assert len(novelty) == 6 + 12  # the few-shot maps are the references, not a judged novelty set
    assert list(novelty[novelty["set"] == "copies"]["nearest"]) == ["t0", "t0", "t1", "t2", "t3", "t3"]
    value = table.set_index(["set", "statistic"])["value"]
    assert value["copies", "near_copy_share"] == 1.0 and value["copies", "mscore"] == 1.0
    assert value["copies", "source_share"] == 4 / 8
    assert value["copies", "novelty_w1"] > value["fresh", "novelty_w1"]
    # novelty_w1: W1 between the set's d1/d2 and the test maps' d1/d2 (both to the few-shot maps)
    test_ratios = stats.nearest_neighbour_ratios(flat(test), flat(fewshot))["ratio"]
    fresh_ratios = novelty[novelty["set"] == "fresh"]["ratio"]
    assert value["fresh", "novelty_w1"] == pytest.approx(stats.wasserstein1(fresh_ratios, test_ratios))
    # precision / recall are fidelity.knn_manifold_metrics (checked against prdc) against the test maps
    metrics = knn_manifold_metrics(flat(test), flat(fresh), k=3)
    assert value["fresh", "precision"] == pytest.approx(metrics["precision"])
    assert value["fresh", "recall"] == pytest.approx(metrics["recall"])
    assert value["fresh", "coverage"] == pytest.approx(metrics["coverage"])
    own = knn_manifold_metrics(flat(test), flat(fewshot), k=3)  # the few-shot maps' own row
    assert value["fewshot", "precision"] == pytest.approx(own["precision"])
    assert ("fewshot", "near_copy_share") not in value.index
    ci = table.set_index(["set", "statistic"])[["ci_low", "ci_high"]]
    assert ci.loc[("fresh", "precision")].notna().all() and ci.loc[("copies", "near_copy_share")].tolist() == [1, 1]
    # the copies are farther from the test maps' novelty than the fresh set (compare_with): a positive difference
    assert table.set_index(["set", "statistic"]).loc[("copies", "novelty_w1"), "delta_vs_discovered"] > 0


def test_moments_equal_scipys(rng):
    from scipy.stats import kurtosis, skew

    from discoverydiff.stats.onepoint import pdf_moments

    x = rng.gamma(2.0, size=5000)
    moments = pdf_moments(x, log10=False)
    assert moments["skewness"] == pytest.approx(skew(x), rel=1e-10)
    assert moments["kurtosis"] == pytest.approx(kurtosis(x), rel=1e-10)
    assert moments["std"] == pytest.approx(np.std(x), rel=1e-12)


def test_paired_reproducibility_pairs_rows_by_name(rng):
    base = rng.normal(size=(6, 1, 8, 8))
    names = [f"sample_{i:05d}" for i in range(6)]
    same = stats.paired_reproducibility(base, names, base[::-1].copy(), names[::-1], n_boot=20)
    assert same["value"] == 1.0 and same["n"] == 6 and same["mean_similarity"] == pytest.approx(1.0)
    other = stats.paired_reproducibility(base, names, rng.normal(size=(4, 1, 8, 8)), names[:4], n_boot=20)
    assert other["n"] == 4 and other["value"] == 0.0
    # a faint change keeps a pair reproduced; the score is scipy's correlation above 0.6
    tuned = base + 0.9 * rng.normal(size=base.shape)
    got = stats.paired_reproducibility(base, names, tuned, names, n_boot=20)
    corr = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(base, tuned)]
    assert got["value"] == pytest.approx(np.mean(np.array(corr) > 0.6))
    assert stats.paired_reproducibility(base, names, base, ["x"] * 6) is None


def test_scale_with_pools_a_real_set_into_the_k_nn_features_scale():
    """With ``scale_with`` the k-NN features are scaled on the reference and that set together: the rows are
    fidelity.knn_manifold_metrics (checked against prdc) on features standardized by the pooled mean and std."""
    rng = np.random.default_rng(0)  # a draw where the two scales give different rows

    def maps(n):
        return rng.lognormal(size=(n, 1, 8, 8)) * rng.lognormal(sigma=0.5, size=(n, 1, 1, 1))

    fewshot, reference, fresh = maps(12), maps(6), maps(10)  # six reference maps: their own scale is noisy

    def features(x):  # the log maps' mean and spread
        logs = np.log10(np.asarray(x))
        return np.stack([logs.mean(axis=(1, 2, 3)), logs.std(axis=(1, 2, 3))], axis=1)

    common = dict(kind="field", fewshot=fewshot, precision_features=features, standardize_precision=True,
                  n_boot=0, compare_with=None, reference_name="validation")
    sets = {"fresh": fresh, "fewshot": fewshot}
    pooled = stats.compare_sets(reference, sets, scale_with="fewshot", **common).set_index(["set", "statistic"])
    own = stats.compare_sets(reference, sets, **common).set_index(["set", "statistic"])

    def metrics(pool):
        mean, std = pool.mean(axis=0), pool.std(axis=0)
        return knn_manifold_metrics((features(reference) - mean) / std, (features(fresh) - mean) / std, k=3)

    with_fewshot = metrics(np.concatenate([features(reference), features(fewshot)]))
    alone = metrics(features(reference))
    rows = ("precision", "recall", "coverage")
    for statistic in rows:
        assert pooled.loc[("fresh", statistic), "value"] == pytest.approx(with_fewshot[statistic])
        assert own.loc[("fresh", statistic), "value"] == pytest.approx(alone[statistic])
    assert [with_fewshot[s] for s in rows] != [alone[s] for s in rows]
    # the pooled scale changes the k-NN rows only: the distances of the domain statistics stay as they were
    for statistic in ("pdf_w1_log10", "power_log10_distance"):
        assert pooled.loc[("fresh", statistic), "value"] == own.loc[("fresh", statistic), "value"]
    with pytest.raises(ValueError, match="scale_with"):
        stats.compare_sets(reference, sets, scale_with="validation", **common)
