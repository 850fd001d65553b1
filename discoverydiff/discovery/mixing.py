"""What mixing alone does to a field domain's one-point statistics.

Discovery's ``pairs`` scheme makes every candidate latent a mixture of two few-shot targets'
latents (:class:`discoverydiff.discovery.PairCandidates`). A mixture of two fields that vary
independently is closer to Gaussian than either: for independent fields with the same excess
kurtosis k, ``c_a X + c_b Y`` has excess kurtosis ``k (c_a^4 + c_b^4) / (c_a^2 + c_b^2)^2``,
about k / 2 at the scheme's default weights (cumulants add). No decoder can give back what the
mixing took, so a domain whose targets owe their tails to a few deep, localized structures (the
shadowed pockets of a radiation field) loses tail weight in any set made of such mixtures.

This module applies the *same* construction to the targets' maps in the model's normalized
space, where the decoder works, and reports the pooled one-point moments the mixtures would
have if the model decoded a mixture of latents exactly into the mixture of the maps: a
ceiling for the discovered set, beside the sets the workflow made. Run it on one dataset's
results::

    python -m discoverydiff.discovery.mixing results/radiation [--out mixing.csv]
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..physical import real_physical_maps, to_physical_maps
from ..stats.onepoint import pdf_moments
from ..store import read_attrs, read_tensor_file
from .candidates import PairCandidates
from .geometry import References

log = logging.getLogger(__name__)

#: The sample sets of a dataset's results folder reported beside the mixtures (file -> set name).
SAMPLE_SETS = {"samples.h5": "discovered", "baseline_samples.h5": "baseline_samples",
               "base_samples.h5": "base_samples"}
MOMENTS = ("mean", "std", "skewness", "kurtosis")


def pair_mixtures(maps: np.ndarray, a, b, w) -> np.ndarray:
    """The pairs scheme's candidates formed from ``maps`` (N, ...) in place of latents.

    Row j mixes maps ``a[j]`` and ``b[j]`` at weight ``w[j]`` exactly as discovery mixes two
    target latents: each keeps its share of the direction of the other maps' mean, and the
    rest follows the great circle between the two, rescaled to the weighted mean of their norms.
    Returns (len(a), ...) float64.
    """
    maps = np.asarray(maps, dtype=np.float64)
    flat = torch.from_numpy(maps.reshape(len(maps), -1))
    refs = References.build(flat, flat[:1])  # the construction uses the targets alone
    a, b = torch.as_tensor(np.asarray(a), dtype=torch.long), torch.as_tensor(np.asarray(b), dtype=torch.long)
    if len(a) and (a == b).any():
        raise ValueError("a pair must be two distinct maps")
    candidates = PairCandidates.score(refs, a, b, torch.as_tensor(np.asarray(w), dtype=torch.float64))
    out = [candidates.latent(j).numpy() for j in range(len(a))]
    return np.stack(out).reshape((len(a),) + maps.shape[1:]) if out else np.empty((0,) + maps.shape[1:])


def discovered_pairs(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Few-shot indices (a, b) and weights w of the kept latents of ``discovered_latents.h5``."""
    acceptance = read_attrs(path).get("acceptance")
    if not isinstance(acceptance, dict) or acceptance.get("scheme") != "pairs":
        raise InputError(path, "is not a record of the 'pairs' scheme (its latents are not mixtures of two targets)")
    sources = np.asarray(acceptance.get("sources", []), dtype=np.int64)
    names = read_tensor_file(path).names
    if sources.shape != (len(names), 2):
        raise InputError(path, f"its record has {len(sources)} source pairs for {len(names)} latents")
    grid = np.asarray(acceptance.get("weights") or [], dtype=np.float64)
    weights = []
    for name in names:
        match = re.search(r"@w=([0-9.]+)$", name)
        if match is None:
            raise InputError(path, f"latent {name!r} does not name its slerp weight ('@w=...')")
        w = float(match.group(1))  # names round to 3 decimals; the record's grid has the exact value
        weights.append(grid[np.argmin(np.abs(grid - w))] if grid.size else w)
    return sources[:, 0], sources[:, 1], np.asarray(weights)


def mixing_table(results_dir, min_weights=(0.05, 0.15, 0.25, 0.35, 0.45), draws: int = 200,
                 seed: int = 0) -> pd.DataFrame:
    """Pooled one-point moments of the few-shot targets, of mixtures of them and of the sample sets.

    Rows (``set``): ``fewshot`` (the targets' values, beyond the normalization bounds too),
    ``fewshot_in_bounds`` (clipped to the bounds, as the model sees them),
    ``mixtures_of_discovered_pairs`` (the kept latents' pairs and weights applied to the
    clipped maps) and ``..._unclipped`` (to the unclipped ones, clipped afterwards: what
    bounds wide enough for the targets would leave), ``random_pairs_min_weight_M`` (``draws``
    sets of as many random pairs, weights uniform in [M, 1 - M]: the median, with the 5th and
    95th percentiles in ``*_p05`` / ``*_p95``), and every sample set found (discovered,
    fine-tuned, base). Moments are of log10 values when all values are positive.
    """
    root = Path(results_dir)
    tensors = root / "tensors.h5"
    physical, _, _, record = real_physical_maps(tensors, "fewshot")
    if len(physical) < 3:
        raise InputError(tensors, f"has {len(physical)} few-shot maps; mixing needs at least 3")
    inside, _ = record.to_normalized(physical)
    outside, _ = record.to_normalized(physical, clip=False)
    log10 = bool((physical > 0).all())

    def moments(model_maps=None, values=None) -> dict:
        values = record.to_physical(model_maps) if values is None else values
        return pdf_moments(values, log10=log10 and bool((values > 0).all()))

    rows = [{"set": "fewshot", **moments(values=physical)}, {"set": "fewshot_in_bounds", **moments(inside)}]
    discovered = root / "discovered_latents.h5"
    n = len(physical)
    if discovered.exists():
        a, b, w = discovered_pairs(discovered)
        if len(a) and max(a.max(), b.max()) >= len(physical):
            raise InputError(discovered, f"names few-shot target {max(a.max(), b.max())} of {len(physical)}")
        rows.append({"set": "mixtures_of_discovered_pairs", **moments(pair_mixtures(inside, a, b, w))})
        rows.append({"set": "mixtures_of_discovered_pairs_unclipped", **moments(pair_mixtures(outside, a, b, w))})
        n = len(a)
    rng = np.random.default_rng(seed)
    for m in min_weights:
        draws_moments = []
        for _ in range(draws):
            a = rng.integers(0, len(physical), n)
            b = (a + rng.integers(1, len(physical), n)) % len(physical)  # never a itself
            draws_moments.append(moments(pair_mixtures(inside, a, b, rng.uniform(m, 1 - m, n))))
        row = {"set": f"random_pairs_min_weight_{m:g}"}
        for key in MOMENTS:
            values = [d[key] for d in draws_moments]
            row[key] = float(np.median(values))
            row[f"{key}_p05"], row[f"{key}_p95"] = (float(v) for v in np.percentile(values, [5, 95]))
        rows.append(row)
    for file, name in SAMPLE_SETS.items():
        if (root / file).exists():
            rows.append({"set": name, **moments(values=to_physical_maps(root / file)[0])})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m discoverydiff.discovery.mixing", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="one dataset's results folder (tensors.h5, discovered_latents.h5, samples)")
    ap.add_argument("--min-weight", type=float, nargs="+", default=[0.05, 0.15, 0.25, 0.35, 0.45])
    ap.add_argument("--draws", type=int, default=200, help="random sets of pairs per min_weight")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the table as CSV")
    args = ap.parse_args(argv)
    try:
        table = mixing_table(args.results, args.min_weight, args.draws, args.seed)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
        print(table.to_string(index=False, na_rep=""))
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
