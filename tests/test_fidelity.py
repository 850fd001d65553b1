"""k-NN precision, recall, density and coverage against the authors' reference code (prdc)."""

import numpy as np
import pytest
from prdc import compute_prdc
from scipy.spatial import cKDTree

from discoverydiff import fidelity
from discoverydiff.fidelity import image_summary_features, knn_manifold_metrics, knn_radii, standardize_features


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("shift", [0.0, 0.7, 3.0])
def test_metrics_match_prdc(k, shift, capsys):
    rng = np.random.default_rng(k)
    real = rng.normal(size=(120, 6))
    fake = rng.normal(size=(80, 6)) * 1.3 + shift
    ours = knn_manifold_metrics(real, fake, k)
    ref = compute_prdc(real, fake, nearest_k=k)
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(ref[key], abs=1e-12), key


def test_blocks_do_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(50, 4)), rng.normal(size=(33, 4)) + 0.5
    whole = knn_manifold_metrics(real, fake)
    monkeypatch.setattr(fidelity, "_BLOCK", 7)
    assert knn_manifold_metrics(real, fake) == whole


@pytest.mark.parametrize("shift", [0.0, 0.8])
def test_sparse_ball_hits_give_prdc_and_dense_recall_of_any_resample(shift):
    """The blocked scan's precision and recall are prdc's; the recall of resampled generated rows is
    that of a dense membership matrix built from scipy's distances and k-d tree radii."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(150, 5)), rng.normal(size=(90, 5)) + shift
    in_real_ball, hits = fidelity.knn_ball_hits(real, fake, k=3, block=16)
    ref = compute_prdc(real, fake, nearest_k=3)
    assert fidelity.recall_of(hits) == pytest.approx(ref["recall"], abs=1e-12)
    assert in_real_ball.mean() == pytest.approx(ref["precision"], abs=1e-12)
    fake_radii = cKDTree(fake).query(fake, k=4)[0][:, 3]
    dense = cdist(real, fake) < fake_radii[None, :]
    assert hits.nnz == dense.sum() and hits.nnz < 0.1 * dense.size  # only the hits are kept
    for _ in range(5):
        idx = rng.integers(0, len(fake), len(fake))  # a bootstrap draw, with repeats
        assert fidelity.recall_of(hits, idx) == pytest.approx(dense[:, idx].any(axis=1).mean(), abs=1e-12)
    blocked = fidelity.knn_ball_hits(real, fake, k=3, block=1024)
    assert (blocked[1] != hits).nnz == 0 and np.array_equal(blocked[0], in_real_ball)


def test_radii_are_the_kth_neighbour_distance_of_a_kd_tree():
    x = np.random.default_rng(1).normal(size=(40, 3))
    distances, _ = cKDTree(x).query(x, k=4)  # itself plus three neighbours
    np.testing.assert_allclose(knn_radii(x, 3), distances[:, 3], rtol=1e-10)
    with pytest.raises(ValueError, match="N > k"):
        knn_radii(x[:3], 3)


def test_separated_sets_score_zero_and_identical_draws_score_high():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(200, 5))
    far = knn_manifold_metrics(real, rng.normal(size=(100, 5)) + 50.0)
    assert far["precision"] == far["recall"] == far["coverage"] == far["density"] == 0.0
    same = knn_manifold_metrics(real, rng.normal(size=(200, 5)))
    assert same["precision"] > 0.8 and same["recall"] > 0.8 and 0.7 < same["density"] < 1.3


def test_summary_features_layout_and_meaning():
    rng = np.random.default_rng(3)
    images = rng.uniform(-1, 1, size=(4, 3, 16, 16))
    f = image_summary_features(images)
    assert f.shape == (4, 35)
    np.testing.assert_allclose(f[:, :3], images.mean(axis=(2, 3)))
    np.testing.assert_allclose(f[:, 3:6], images.std(axis=(2, 3)))
    # a flat white image: luminance quantiles all 1, no edges, 4x4 thumbnail all 1
    white = image_summary_features(np.ones((1, 3, 16, 16)))
    np.testing.assert_allclose(white[0, 6:11], 1.0)
    np.testing.assert_allclose(white[0, 11:13], 0.0)
    np.testing.assert_allclose(white[0, -16:], 1.0)
    # a horizontal cosine of 4 cycles puts its power in the bin holding k = 4/16 cycles per pixel
    cosine = np.broadcast_to(np.cos(2 * np.pi * 4 * np.arange(16) / 16), (1, 3, 16, 16))
    power = image_summary_features(cosine)[0, 13:19]
    edges = np.geomspace(1 / 16, 0.5 * np.sqrt(2) + 1e-9, 7)
    assert np.argmax(power) == np.digitize(0.25, edges) - 1


def test_standardize_uses_the_reference_spread():
    ref = np.array([[0.0, 5.0], [2.0, 5.0]])
    a, b = standardize_features(ref, np.array([[1.0, 6.0]]))
    np.testing.assert_allclose(a, [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(b, [[0.0, 1.0]])  # a constant reference feature is divided by 1
