"""Is the base model sound? Its own samples against held-out images of its source domain.

Every comparison of the workflow leans on the frozen base model: its samples are the "base
model" row of each table, the fine-tuned baseline starts from it, and discovery measures
distances to the inversions of its samples. A model whose deterministic (DDIM) samples fall
off its own source domain makes all of that cheap, so rule ``source_check`` measures, on the
samples exactly as the workflow draws them (``results/base_model/samples.h5``):

- ``range_end_share``: share of pixels within one 8-bit level (1/255 of the half-range) of
  -1 or +1. Samples are stored clipped to [-1, 1], so an over- or undershooting pixel lands
  there; natural photographs have a few per cent of such pixels;
- ``near_uniform_share``: share of samples whose mean is beyond +-0.9 (almost all white or
  all black);
- k-NN ``precision``, ``recall``, ``density``, ``coverage`` (:mod:`discoverydiff.fidelity`)
  against held-out source images, in :func:`discoverydiff.fidelity.image_summary_features`
  standardized by the held-out set.

The same numbers for a second held-out draw of the same size as the samples are the
``source_heldout`` row: what a perfect model would score at that sample size (recall of a
few dozen samples is limited by their number alone).

Held-out source images: for ``model.source_images`` of kind ``natural_patches`` (the demo
model's domain) new patches with a seed the training never used; for kind ``tensors`` the
file's ``test`` split (all rows when it has no split). A published checkpoint whose
training images are not at hand gets the pixel checks only, unless ``model.source_images``
names a tensor file of images from its domain.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .fidelity import DEFAULT_K, image_summary_features, knn_manifold_metrics, standardize_features
from .store import SPLIT_TEST, read_tensor_file

log = logging.getLogger(__name__)

#: A pixel within one 8-bit level of the range ends counts as at the end.
RANGE_END_TOLERANCE = 1.0 / 255.0
#: A sample whose mean lies beyond this is almost uniformly white or black.
NEAR_UNIFORM_MEAN = 0.9
#: The issue-level bar for a sound base model: at most this share of either.
SOUND_LIMIT = 0.05
#: Offset of the held-out patches' seed from the run seed: never a training seed of the demo model.
HELDOUT_SEED_OFFSET = 1_000_003
#: Model sources whose source domain defaults to the natural-image patches.
_NATURAL_PATCH_SOURCES = ("trained", "analytic_gaussian", "empirical")


def range_end_share(images, tolerance: float = RANGE_END_TOLERANCE) -> np.ndarray:
    """Per-image share of pixels with ``|x| >= 1 - tolerance``; images (N, C, H, W) in [-1, 1]."""
    x = np.asarray(images)
    return (np.abs(x) >= 1.0 - tolerance).reshape(x.shape[0], -1).mean(axis=1)


def near_uniform(images, threshold: float = NEAR_UNIFORM_MEAN) -> np.ndarray:
    """Per-image flag: the mean over all pixels and channels is beyond +-``threshold``."""
    x = np.asarray(images, dtype=np.float64)
    return np.abs(x.reshape(x.shape[0], -1).mean(axis=1)) > threshold


def heldout_source_images(model_cfg: dict, seed: int, n: int) -> tuple[np.ndarray | None, str]:
    """Held-out images of the base model's source domain, or (None, the reason there are none)."""
    explicit = model_cfg.get("source_images") or {}
    source = model_cfg.get("source", "trained")
    if not explicit and source not in _NATURAL_PATCH_SOURCES:
        return None, ("none: the source domain of a published checkpoint is not known here; "
                      "set model.source_images to a tensor file of its domain's images")
    kind = explicit.get("kind", "natural_patches")
    resolution, channels = int(model_cfg.get("resolution", 32)), int(model_cfg.get("channels", 3))
    if kind == "natural_patches":  # the training images' own generator, at a seed training never used
        from .source_domain import source_images

        return source_images({"kind": kind, "n": n}, resolution, channels, int(seed) + HELDOUT_SEED_OFFSET)
    path = explicit["path"]
    ts = read_tensor_file(path)
    if ts.split is not None and (ts.split == SPLIT_TEST).any():
        return ts.x[ts.split == SPLIT_TEST], f"tensors({path}, split=test)"
    return ts.x, f"tensors({path})"


def _row(set_name: str, images: np.ndarray, metrics: dict, reference: str) -> dict:
    return {"set": set_name, "n": int(images.shape[0]),
            "range_end_share": float(range_end_share(images).mean()),
            "near_uniform_share": float(near_uniform(images).mean()),
            **{key: metrics.get(key, np.nan) for key in ("precision", "recall", "density", "coverage")},
            "reference": reference}


def source_domain_check(samples, model_cfg: dict, seed: int = 0, n_reference: int = 512,
                        k: int = DEFAULT_K) -> pd.DataFrame:
    """The table of rule ``source_check``: base-model samples against held-out source images.

    Parameters
    ----------
    samples : numpy.ndarray
        (N, C, H, W) base-model samples in [-1, 1], as stored in ``samples.h5``.
    model_cfg : dict
        The config's ``model`` section (which source domain, resolution, channels).
    seed : int
        The run seed; held-out patches use ``seed + HELDOUT_SEED_OFFSET`` (and the perfect-model
        row the next seed).
    n_reference : int
        Held-out source images the k-NN balls are drawn around.
    k : int

    Returns
    -------
    pandas.DataFrame
        Rows ``base_samples`` and, when held-out source images exist, ``source_heldout`` (a second
        held-out draw of the samples' size: the perfect-model reference); columns ``set, n,
        range_end_share, near_uniform_share, precision, recall, density, coverage, reference``.
    """
    x = np.asarray(samples, dtype=np.float32)
    reference, description = heldout_source_images(model_cfg, seed, n_reference)
    perfect, perfect_description = None, ""
    if reference is not None:
        if (model_cfg.get("source_images") or {}).get("kind", "natural_patches") == "natural_patches":
            perfect, perfect_description = heldout_source_images(model_cfg, seed + 1, x.shape[0])
        elif len(reference) >= x.shape[0] + 4 * (k + 1):  # a tensor file: its last rows play the perfect model
            reference, perfect = reference[:-x.shape[0]], reference[-x.shape[0]:]
            perfect_description = f"the last {x.shape[0]} of those rows, left out of the reference"
    rows = []
    if reference is None or min(len(reference), x.shape[0]) <= k:
        why = description if reference is None else f"too few images for k = {k}: {description}"
        rows.append(_row("base_samples", x, {}, why))
    else:
        has_perfect = perfect is not None and perfect.shape[0] > k
        ref_f, gen_f, *perfect_f = standardize_features(
            image_summary_features(reference), image_summary_features(x),
            *([image_summary_features(perfect)] if has_perfect else []))
        rows.append(_row("base_samples", x, knn_manifold_metrics(ref_f, gen_f, k), description))
        if has_perfect:
            rows.append(_row("source_heldout", perfect, knn_manifold_metrics(ref_f, perfect_f[0], k),
                             f"{description}; this row: {perfect_description}"))
    table = pd.DataFrame(rows)
    base = table.iloc[0]
    if base["range_end_share"] > SOUND_LIMIT or base["near_uniform_share"] > SOUND_LIMIT:
        log.warning("the base model's samples fall off its source domain: %.1f%% of pixels at the range ends, "
                    "%.1f%% near-uniform samples (a sound model stays under %.0f%% on both); comparisons "
                    "against the base model are weak", 100 * base["range_end_share"],
                    100 * base["near_uniform_share"], 100 * SOUND_LIMIT)
    return table


__all__ = ["NEAR_UNIFORM_MEAN", "RANGE_END_TOLERANCE", "heldout_source_images", "near_uniform",
           "range_end_share", "source_domain_check"]
