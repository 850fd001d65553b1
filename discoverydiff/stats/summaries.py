"""Per-map summaries of a set, computed one block of maps at a time.

Every statistic of the comparison table is a function of per-map quantities, so a set of
any size is read once, block by block, into (N, ...) arrays whose size does not depend on
the map size:

- fields: the radial power spectrum of each map (N, n_k), and its values on the shared
  histogram grid with exact tails and power sums (:class:`~.onepoint.ValueGrid`);
- novelty: d1, d2, the nearest target and the highest cosine similarity to a target;
- k-NN: the summary features of each map (N, F);
- the share of each map's pixels at a clip bound.

A bootstrap draw then pools rows of these arrays with weights (:func:`pooled`), exactly as
it would have pooled the maps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .neighbours import _features, max_cosine_similarity, nearest_neighbour_ratios
from .onepoint import ValueGrid, _log10_values
from .power import radial_power_spectrum
from .sources import BLOCK_BYTES

FIELD_POWER_OF = ("log10", "overdensity", "field")


@dataclass
class FieldSettings:
    """How the field statistics see a map: the channel, the spectrum's input and the PDF's grid."""

    boxlength: float | tuple = 1.0
    power_of: str = "log10"
    window: object = None
    channel: int = 0
    grid: ValueGrid | None = None

    def __post_init__(self):
        if self.power_of not in FIELD_POWER_OF:
            raise ValueError(f"power_of must be one of {FIELD_POWER_OF}, got {self.power_of!r}")

    def maps(self, block) -> np.ndarray:
        x = np.asarray(block, dtype=np.float64)
        if x.ndim == 4:
            x = x[:, self.channel]
        if x.ndim != 3:
            raise ValueError(f"fields must be (N, H, W) or (N, C, H, W), got shape {x.shape}")
        return x

    def spectra(self, maps, what: str = "maps") -> tuple[np.ndarray, np.ndarray]:
        if self.power_of == "log10":
            data, options = _log10_values(maps, what).reshape(maps.shape), {"overdensity": False}
        else:
            data, options = maps, {"overdensity": self.power_of == "overdensity"}
        k, power, _ = radial_power_spectrum(data, self.boxlength, window=self.window, **options)
        return k, power


@dataclass
class NoveltyReferences:
    """The few-shot targets' features, computed once, and how samples are compared with them."""

    features: np.ndarray  # (M, D)
    extractor: Callable | None = None
    center_cosine: bool = True

    def rows(self, block) -> dict:
        f = _features(block, self.extractor)
        ratios = nearest_neighbour_ratios(f, self.features)
        cosine = max_cosine_similarity(f, self.features, None, center_on_references=self.center_cosine)
        return {"d1": ratios["d1"].to_numpy(), "d2": ratios["d2"].to_numpy(), "ratio": ratios["ratio"].to_numpy(),
                "nearest_index": ratios["nearest_index"].to_numpy(), "max_cosine": cosine}


@dataclass
class SetSummary:
    n: int
    names: list | None
    per_map: dict  # name -> (N, ...) array

    def __getitem__(self, key):
        return self.per_map[key]

    def get(self, key, default=None):
        return self.per_map.get(key, default)

    def drop(self, *keys) -> None:
        for key in keys:
            self.per_map.pop(key, None)


def summarize(source, fields: FieldSettings | None = None, novelty: NoveltyReferences | None = None,
              precision_features: Callable | None = None, what: str = "maps",
              block_bytes: int = BLOCK_BYTES) -> SetSummary:
    """Read ``source`` (:mod:`.sources`) block by block into a :class:`SetSummary`.

    ``fields`` adds ``power`` (and ``k``), and with its grid ``counts``, ``tails``, ``sums`` of
    the log10 values; ``novelty`` adds ``d1, d2, ratio, nearest_index, max_cosine``;
    ``precision_features`` adds ``precision``; a source with clip masks adds ``clipped`` (the
    share of each map's pixels at a clip bound).
    """
    parts: dict[str, list] = {}
    k = None
    for _, block, mask in source.blocks(block_bytes):
        out = {}
        if fields is not None:
            maps = fields.maps(block)
            k, out["power"] = fields.spectra(maps, what)
            if fields.grid is not None:
                out["counts"], out["tails"], out["sums"] = fields.grid.summarize(_log10_values(maps, what)
                                                                                 .reshape(maps.shape))
        if novelty is not None:
            out.update(novelty.rows(block))
        if precision_features is not None:
            out["precision"] = np.asarray(precision_features(block), dtype=np.float64)
        if mask is not None:
            out["clipped"] = np.asarray(mask, dtype=bool).reshape(len(mask), -1).mean(axis=1)
        for key, value in out.items():
            parts.setdefault(key, []).append(value)
    per_map = {key: np.concatenate(values) for key, values in parts.items()}
    if k is not None:
        per_map["k"] = k
    return SetSummary(len(source), getattr(source, "names", None), per_map)


def log_range(source, fields: FieldSettings, what: str = "maps", block_bytes: int = BLOCK_BYTES):
    """(min, max, mean) of the log10 values of a source's maps, in one pass."""
    lo, hi, total, count = np.inf, -np.inf, 0.0, 0
    for _, block, _ in source.blocks(block_bytes):
        values = _log10_values(fields.maps(block), what)
        lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
        total, count = total + float(values.sum()), count + values.size
    if count == 0:
        raise ValueError(f"{what}: no values")
    return lo, hi, total / count


def pooled(per_map: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sum of the rows of ``per_map`` with ``weights`` (a bootstrap draw's multiplicities)."""
    return weights @ per_map


def draw_weights(idx, n: int) -> np.ndarray:
    """Multiplicity of each of ``n`` rows in the index array ``idx``."""
    return np.bincount(np.asarray(idx, dtype=np.int64), minlength=n).astype(np.float64)
