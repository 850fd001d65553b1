"""How much of a galaxy set's k-NN precision and recall is its sky level: a check on the validation maps.

    python benchmarks/sky_level.py results/galaxies [--sets samples.h5 baseline_samples.h5] [--border 4]

Real cutouts of one survey share their sky level (the background the image stretch leaves) to a
fraction of a percent of the range; decoded samples need not. For each generated set of the
dataset's results folder this prints

- the spread over maps of the sky level (the median of each map's ``--border``-pixel frame, per
  channel, in the model's [-1, 1] units) beside the few-shot and validation maps';
- k-NN precision, recall and coverage (:func:`discoverydiff.fidelity.knn_manifold_metrics`) of
  the set against the **validation** maps, in the summary features rule ``settings`` uses
  (scaled on the validation and few-shot maps together), as decoded and with every map shifted,
  channel by channel, so that its sky level is the few-shot maps' mean.

The shift is a diagnostic, never applied by the workflow: it shows how far a set's scores in
these features come from its sky level rather than from its galaxies. The test maps are not read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from discoverydiff.fidelity import image_summary_features, knn_manifold_metrics, standardize_features
from discoverydiff.physical import record_from_attrs
from discoverydiff.stats.sources import RealMaps
from discoverydiff.store import read_attrs, read_tensor_file

DEFAULT_SETS = ("samples.h5", "discovered_unscreened.h5", "discovered_prior.h5", "baseline_samples.h5")


def sky_level(x: np.ndarray, border: int = 4) -> np.ndarray:
    """(N, C) median over each map's frame of ``border`` pixels, per channel, of maps (N, C, H, W)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4 or min(x.shape[-2:]) <= 2 * border:
        raise ValueError(f"maps must be (N, C, H, W) wider than twice the border {border}, got {x.shape}")
    frame = np.ones(x.shape[-2:], dtype=bool)
    frame[border:-border, border:-border] = False
    return np.median(x[:, :, frame], axis=2)


def metrics(reference, generated, scale) -> dict:
    """k-NN metrics of ``generated`` against ``reference`` (maps in [-1, 1]; samples clipped to it, as the
    statistics see them in physical units) in summary features standardized on ``scale``."""
    _, ref, gen = standardize_features(*(image_summary_features(np.clip(x, -1.0, 1.0))
                                         for x in (scale, reference, generated)))
    return knn_manifold_metrics(ref, gen)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a galaxy dataset's results folder (tensors.h5 and sample sets)")
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS), help="sample files in that folder")
    parser.add_argument("--border", type=int, default=4, help="frame width, in pixels, of the sky level")
    parser.add_argument("--n", type=int, default=16, help="maps of each set (every set is judged on as many)")
    args = parser.parse_args(argv)
    tensors = args.results / "tensors.h5"
    record = record_from_attrs(read_attrs(tensors), tensors)  # store and physical name the file on bad input
    real = {split: record.to_normalized(RealMaps(tensors, split, record).array())[0]
            for split in ("fewshot", "validation")}
    target = sky_level(real["fewshot"], args.border).mean(axis=0)
    scale = np.concatenate([real["validation"], real["fewshot"]])
    print(f"{'set':26s} {'sky spread':>10s} {'precision':>15s} {'recall':>15s} {'coverage':>15s}   (as decoded -> "
          "sky matched)")
    for split, maps in real.items():
        print(f"{split:26s} {sky_level(maps, args.border).std(axis=0).mean():10.4f}")
    for name in args.sets:
        path = args.results / name
        if not path.exists():
            print(f"{name:26s} (not found)")
            continue
        x = read_tensor_file(path).x[: args.n].astype(np.float64)
        shifted = x + (target - sky_level(x, args.border))[:, :, None, None]
        before, after = metrics(real["validation"], x, scale), metrics(real["validation"], shifted, scale)
        cells = " ".join(f"{before[k]:6.3f} -> {after[k]:5.3f}" for k in ("precision", "recall", "coverage"))
        print(f"{name:26s} {sky_level(x, args.border).std(axis=0).mean():10.4f} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
