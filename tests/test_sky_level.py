"""benchmarks/sky_level.py: the sky level of a map is the median of its frame, untouched by its galaxy."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_inputs import benchmark_script


@pytest.fixture(scope="module")
def sky():
    return benchmark_script("sky_level")


def test_sky_level_is_the_frame_median_per_channel(sky):
    rng = np.random.default_rng(0)
    n, c, h, w = 5, 3, 32, 32
    level = rng.uniform(-0.95, -0.85, size=(n, c))
    x = level[:, :, None, None] + 0.001 * rng.standard_normal((n, c, h, w))
    yy, xx = np.mgrid[:h, :w]
    x += 1.5 * np.exp(-((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / 20.0)  # a galaxy in the middle
    x[:, :, 0, :3] = 1.0  # a star on the frame: a few of its 240 pixels
    got = sky.sky_level(x, border=4)
    assert got.shape == (n, c)
    np.testing.assert_allclose(got, level, atol=0.002)
    assert not np.allclose(x.mean(axis=(2, 3)), level, atol=0.01)  # the plain mean would not do
    with pytest.raises(ValueError, match="border"):
        sky.sky_level(x[:, :, :8, :8], border=4)
