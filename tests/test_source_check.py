"""The base model's source-domain check: pixel shares by construction, k-NN rows on real patches."""

import logging

import numpy as np

from discoverydiff.source_check import near_uniform, range_end_share, source_domain_check
from discoverydiff.store import write_tensor_file
from discoverydiff.training import natural_image_patches

DEMO_MODEL = {"source": "trained", "resolution": 16, "channels": 3}


def test_range_end_share_and_near_uniform_by_construction():
    x = np.zeros((2, 1, 10, 10), np.float32)
    x[0, 0, :3] = 1.0  # 30 of 100 at +1
    x[0, 0, 3, :5] = -1.0 + 0.5 / 255  # 5 within one 8-bit level of -1
    x[0, 0, 4, :5] = -1.0 + 2.0 / 255  # 5 two levels away: not at the end
    x[1] = 0.95
    np.testing.assert_allclose(range_end_share(x), [0.35, 0.0])
    np.testing.assert_array_equal(near_uniform(x), [False, True])
    np.testing.assert_array_equal(near_uniform(-x), [False, True])


def test_patches_of_the_source_domain_pass_and_saturated_samples_fail(caplog):
    good = natural_image_patches(48, 16, seed=7)
    table = source_domain_check(good, DEMO_MODEL, seed=0, n_reference=192)
    assert list(table["set"]) == ["base_samples", "source_heldout"]
    base = table.iloc[0]
    assert base["range_end_share"] < 0.05 and base["near_uniform_share"] == 0.0
    assert base["precision"] > 0.6 and base["recall"] > 0.4
    assert "natural_patches(n=192" in base["reference"]

    # what an under-trained model does under DDIM: many pixels pushed past the range, some flat samples
    bad = np.clip(good * 4.0, -1, 1)
    bad[:8] = np.sign(bad[:8].mean(axis=(1, 2, 3)))[:, None, None, None]
    with caplog.at_level(logging.WARNING, logger="discoverydiff.source_check"):
        worse = source_domain_check(bad, DEMO_MODEL, seed=0, n_reference=192).iloc[0]
    assert worse["range_end_share"] > 0.3 and worse["near_uniform_share"] >= 8 / 48
    assert worse["precision"] < base["precision"] - 0.3
    assert "fall off its source domain" in caplog.text


def test_a_published_checkpoint_gets_the_pixel_checks_and_says_why_no_more():
    x = natural_image_patches(8, 16, seed=1)
    table = source_domain_check(x, {"source": "diffusers", "resolution": 16, "channels": 3})
    assert len(table) == 1 and np.isnan(table.iloc[0]["precision"])
    assert "model.source_images" in table.iloc[0]["reference"]


def test_a_tensor_file_reference_uses_its_test_rows(tmp_path):
    images = natural_image_patches(80, 16, seed=2)
    split = np.array(["fewshot"] * 20 + ["test"] * 60)
    path = tmp_path / "source.h5"
    write_tensor_file(path, images, [f"p{i}" for i in range(80)], "images", split=split)
    cfg = {"source": "diffusers", "resolution": 16, "channels": 3,
           "source_images": {"kind": "tensors", "path": str(path)}}
    table = source_domain_check(images[:16], cfg, k=3)
    assert list(table["set"]) == ["base_samples", "source_heldout"]
    assert "split=test" in table.iloc[0]["reference"]
    assert table.iloc[1]["n"] == 16  # the last 16 held-out rows play the perfect model
