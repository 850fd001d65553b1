"""Helpers shared by the radiation-field and galaxy demos.

Argument checks (seeds, shapes, counts), the random-stream numbers, an atomic-write
context manager and a JSON writer.

Every map and image ``i`` is a pure function of ``(seed, i)``: its generator is
``numpy.random.default_rng([seed, stream, i])`` with ``stream`` one of the constants
below, so adding maps never changes earlier ones and the same seed gives bitwise-equal
files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..store import atomic_path

# Independent random streams, so FITS maps, HDF5 maps and galaxies never share draws.
_STREAM_FITS = 0
_STREAM_HDF5 = 1
_STREAM_GALAXY = 2


def _as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """The Generator itself, or a new one seeded by ``rng`` (None means seed 0)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def _check_shape(shape: Sequence[int], minimum: int = 2) -> tuple[int, int]:
    if len(shape) != 2:
        raise ValueError(f"shape must be (ny, nx), got {shape!r}")
    ny, nx = (_check_count(v, "shape") for v in shape)
    if ny < minimum or nx < minimum:
        raise ValueError(f"shape must be at least {minimum} x {minimum} pixels, got {shape!r}")
    return ny, nx


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _check_seed(seed) -> int:
    return _check_count(seed, "seed")


def _write_json(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
