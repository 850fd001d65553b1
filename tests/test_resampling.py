"""Intervals and tests of the comparison against scipy's bootstrap, permutation test and energy distance."""

import numpy as np
import pytest
from scipy import stats as sps

from discoverydiff.stats.resampling import badness, percentile_interval, permutation_pvalue, resample_draws
from discoverydiff.stats.two_sample import energy_distance, energy_test


def test_two_sided_bootstrap_matches_scipys_independent_resampling(rng):
    # the distance of one set's mean to a reference's mean, both sides resampled independently: the
    # interval scipy.stats.bootstrap(paired=False) gives for the same statistic
    a, b = rng.exponential(1.0, 40), rng.exponential(1.3, 60)
    statistic = lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis)  # noqa: E731
    draws_a = resample_draws(len(a), 20000, np.random.default_rng(1))
    draws_b = resample_draws(len(b), 20000, np.random.default_rng(2))
    ours = percentile_interval(a[draws_a].mean(1) - b[draws_b].mean(1))
    theirs = sps.bootstrap((a, b), statistic, paired=False, n_resamples=20000, method="percentile",
                           random_state=3).confidence_interval
    assert ours[0] == pytest.approx(theirs.low, abs=0.02)
    assert ours[1] == pytest.approx(theirs.high, abs=0.02)
    # resampling only one side gives a narrower interval: the reference's noise is real
    one_side = percentile_interval(a[draws_a].mean(1) - b.mean())
    assert one_side[1] - one_side[0] < 0.85 * (ours[1] - ours[0])


@pytest.mark.parametrize("shift", [0.0, 1.5])
def test_permutation_pvalue_matches_scipys_permutation_test(rng, shift):
    a, b = rng.normal(0, 1, 15), rng.normal(shift, 1, 12)
    observed = a.mean() - b.mean()
    pooled = np.concatenate([a, b])
    perm_rng = np.random.default_rng(5)
    null = []
    for _ in range(20000):
        order = perm_rng.permutation(len(pooled))
        null.append(pooled[order[:15]].mean() - pooled[order[15:]].mean())
    ours = permutation_pvalue(observed, null)
    theirs = sps.permutation_test((a, b), lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                                  n_resamples=20000, alternative="two-sided", random_state=6).pvalue
    assert ours == pytest.approx(theirs, abs=0.025)  # two randomized estimates: a few of their spreads
    if shift:
        assert ours < 0.05


def test_permutation_pvalue_conventions():
    # randomized: at least 1 / (n + 1); two-sided is twice the smaller tail, at most 1; NaN without draws
    assert permutation_pvalue(10.0, np.zeros(99)) == pytest.approx(2 / 100)
    assert permutation_pvalue(0.0, np.zeros(99)) == 1.0
    assert permutation_pvalue(-3.0, np.arange(-4, 5)) == pytest.approx(2 * 3 / 10)
    assert np.isnan(permutation_pvalue(1.0, [])) and np.isnan(permutation_pvalue(np.nan, [1.0]))


def test_badness_reads_each_statistic_the_right_way():
    assert badness("pdf_w1_log10", 0.2) == 0.2
    assert badness("power_slope_difference", -0.3) == 0.3  # a signed difference: its size
    assert badness("recall", 0.75) == pytest.approx(0.25)  # higher is better
    assert badness("concentration_w1", 0.5) == 0.5  # every morphology W1 is a distance
    assert np.isnan(badness("clipped_share", 0.1))  # no direction: no difference is taken


def test_energy_distance_in_one_dimension_is_scipys_squared(rng):
    x, y = rng.normal(0, 1, 30), rng.normal(0.5, 2, 45)
    assert energy_distance(x, y) == pytest.approx(sps.energy_distance(x, y) ** 2, rel=1e-10)


def test_energy_distance_closed_forms(rng):
    # two point masses a and b: E = 2 |a - b|; the same sample: 0; invariant under rotation
    a, b = np.zeros((5, 3)), np.tile([3.0, 4.0, 0.0], (7, 1))
    assert energy_distance(a, b) == pytest.approx(10.0)
    x = rng.normal(size=(20, 4))
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    y = rng.normal(1.0, 1.0, size=(25, 4))
    assert energy_distance(x @ q, y @ q) == pytest.approx(energy_distance(x, y), rel=1e-9)


def test_energy_test_pvalue_matches_scipys_permutation_test(rng):
    x, y = rng.normal(0, 1, (12, 3)), rng.normal(0.6, 1, (14, 3))
    ours = energy_test(x, y, n_permutations=4000, seed=1)

    points = np.concatenate([x, y])

    def statistic(rows_a, rows_b):  # scipy permutes 1-D samples: permute row numbers, look the points up
        return energy_distance(points[rows_a.astype(int)], points[rows_b.astype(int)])

    theirs = sps.permutation_test((np.arange(12.0), np.arange(12.0, 26.0)), statistic, n_resamples=4000,
                                  alternative="greater", vectorized=False, random_state=2)
    assert ours["statistic"] == pytest.approx(theirs.statistic)
    assert ours["p_value"] == pytest.approx(theirs.pvalue, abs=0.02)
    same = energy_test(x, rng.normal(0, 1, (14, 3)), n_permutations=2000, seed=3)
    assert same["p_value"] > 0.05  # the same distribution is not rejected here
    assert energy_test(x, y + 3.0, n_permutations=500, seed=4)["p_value"] < 0.01


def test_energy_test_subsamples_a_large_reference(rng):
    out = energy_test(rng.normal(size=(10, 2)), rng.normal(size=(300, 2)), n_permutations=50, max_pooled=110)
    assert out["n_y"] == 300 and out["n_y_used"] == 100
    with pytest.raises(ValueError, match="NaN"):
        energy_test(np.full((3, 2), np.nan), rng.normal(size=(5, 2)))
