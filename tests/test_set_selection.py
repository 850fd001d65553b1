"""Screening by set: pooled statistics of subsets against scipy and the spectra, and the swap search."""

import numpy as np
import pytest
from scipy import stats

from discoverydiff.demo import gaussian_random_field
from discoverydiff.discovery.set_selection import SET_STATISTICS, map_sums, pooled_statistics, select_set
from discoverydiff.stats.power import fit_power_law, radial_power_spectrum, slope_fit_range


def _fields(rng, n, slope=-3.0, side=32, offset=0.0, scale=1.0):
    return np.stack([offset + scale * np.exp(0.5 * gaussian_random_field((side, side), slope, rng))
                     for _ in range(n)])


def test_pooled_statistics_of_subsets_match_scipy_and_the_spectra():
    rng = np.random.default_rng(3)
    maps, reference = _fields(rng, 12), _fields(rng, 6, slope=-2.5)
    lo, hi = min(maps.min(), reference.min()), max(maps.max(), reference.max())
    sums, ref = map_sums(maps, lo, hi, shift=1.0, bins=4096), map_sums(reference, lo, hi, shift=1.0, bins=4096)
    subsets = [np.arange(12), np.array([0, 3, 4, 9]), np.array([2, 2, 5])]  # weights may repeat a map
    weights = np.zeros((len(subsets), 12))
    for row, idx in zip(weights, subsets):
        np.add.at(row, idx, 1.0)
    got = dict(zip(SET_STATISTICS, pooled_statistics(sums, weights, ref).T))
    k, power = radial_power_spectrum(maps)[:2]
    _, ref_power = radial_power_spectrum(reference)[:2]
    k_lo, k_hi = slope_fit_range((32, 32))
    fit = (k >= k_lo) & (k <= k_hi)
    for row, idx in enumerate(subsets):
        values = maps[idx].ravel()
        assert got["mean"][row] == pytest.approx(values.mean(), rel=1e-10)
        assert got["std"][row] == pytest.approx(values.std(), rel=1e-10)
        assert got["skewness"][row] == pytest.approx(stats.skew(values), rel=1e-8)
        assert got["kurtosis"][row] == pytest.approx(stats.kurtosis(values), rel=1e-8)
        w1 = stats.wasserstein_distance(values, reference.ravel())
        assert got["pdf_w1"][row] == pytest.approx(w1, abs=2 * (hi - lo) / 4096)  # to a bin or two
        mean_power = power[idx].mean(0)
        assert got["power_slope"][row] == pytest.approx(fit_power_law(k, mean_power, k_lo, k_hi)[0], rel=1e-10)
        distance = np.mean(np.abs(np.log10(mean_power[fit]) - np.log10(ref_power.mean(0)[fit])))
        assert got["power_distance"][row] == pytest.approx(distance, rel=1e-10)
    without = pooled_statistics(sums, weights)
    assert np.isnan(without[:, -2:]).all()
    assert np.allclose(without[:, :-2], pooled_statistics(sums, weights, ref)[:, :-2])


def test_select_set_swaps_out_members_that_share_an_offset():
    # targets and half the candidates share one distribution; the other half sits 0.5 higher. Each
    # offset map alone is unremarkable, but a start made of them is off in its pooled mean.
    rng = np.random.default_rng(7)
    targets = _fields(rng, 10)
    good, offset = _fields(rng, 10), _fields(rng, 10, offset=0.5)
    candidates = np.concatenate([good, offset])
    lo, hi = candidates.min(), candidates.max()
    shift = targets.mean()
    start = np.zeros(20, dtype=bool)
    start[[0, 1, 2, 10, 11, 12, 13, 14]] = True
    keep, record = select_set(map_sums(candidates, lo, hi, shift), map_sums(targets, lo, hi, shift), start)
    assert keep.sum() == 8
    assert keep[:10].sum() >= 7  # the offset maps went out
    assert record["swaps"] >= 4 and record["objective_kept"] < record["objective_start"]
    assert abs(record["kept"]["mean"] - record["targets"]["mean"]) < abs(record["start"]["mean"]
                                                                          - record["targets"]["mean"])
    assert set(record["statistics"]) == set(SET_STATISTICS)
    # a start that is already the targets' own distribution needs no swap that makes it worse
    again, record2 = select_set(map_sums(candidates, lo, hi, shift), map_sums(targets, lo, hi, shift), keep)
    assert record2["objective_kept"] <= record["objective_kept"] + 1e-12 and again.sum() == 8


def test_select_set_keeps_the_start_when_every_candidate_is_kept():
    rng = np.random.default_rng(0)
    maps = _fields(rng, 4)
    start = np.ones(4, dtype=bool)
    keep, record = select_set(map_sums(maps, maps.min(), maps.max(), 0.0), map_sums(maps, maps.min(), maps.max(), 0.0),
                              start)
    assert keep.all() and record["swaps"] == 0


def test_restarts_reach_the_exhaustive_optimum_and_never_lose_to_one_descent():
    # 9 candidates, keep 3: all 84 subsets can be measured, so the search's end point can be checked
    # against the exhaustive minimum of the same objective
    from itertools import combinations

    rng = np.random.default_rng(11)
    targets = _fields(rng, 6)
    candidates = np.concatenate([_fields(rng, 3), _fields(rng, 3, offset=0.3), _fields(rng, 3, offset=-0.4)])
    lo, hi = min(candidates.min(), targets.min()), max(candidates.max(), targets.max())
    cand, targ = map_sums(candidates, lo, hi, targets.mean()), map_sums(targets, lo, hi, targets.mean())
    start = np.zeros(9, dtype=bool)
    start[[3, 4, 6]] = True
    one, rec_one = select_set(cand, targ, start, seed=2)
    many, rec_many = select_set(cand, targ, start, seed=2, restarts=30)
    assert rec_one["restarts"] == 0 and rec_one["best_start"] == 0
    assert rec_many["objective_kept"] <= rec_one["objective_kept"] + 1e-12
    assert 0 <= rec_many["best_start"] <= 30 and many.sum() == 3
    used = rec_many["statistics"]
    goal = np.array([rec_many["targets"][s] for s in used])
    unit = np.array([rec_many["unit"][s] for s in used])
    subsets = np.zeros((84, 9))
    for row, chosen in zip(subsets, combinations(range(9), 3)):
        row[list(chosen)] = 1.0
    index = [SET_STATISTICS.index(s) for s in used]
    z = (pooled_statistics(cand, subsets, targ)[:, index] - goal) / unit
    exhaustive = np.mean(z * z, axis=1)
    assert rec_many["objective_kept"] == pytest.approx(exhaustive.min(), rel=1e-9)
    assert subsets[np.argmin(exhaustive)].astype(bool).tolist() == many.tolist()
    assert rec_one["objective_kept"] > exhaustive.min() + 0.1  # here one descent stops at a local minimum
