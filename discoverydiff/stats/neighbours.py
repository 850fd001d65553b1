"""Memorization and reproducibility of samples, in pixel or learned feature space.

Nearest-neighbour distance ratios, the highest cosine similarity to a reference (the
memorization score's input, :func:`max_cosine_similarity`), paired cosine similarity
and the reproducibility score, as in Zhang et al. (ICML 2024, "The Emergence of
Reproducibility and Consistency in Diffusion Models"); :func:`load_feature_extractor`
loads a user-supplied TorchScript or ``torch.export`` feature model for them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import InputError


def _features(images, features) -> np.ndarray:
    if features is None:
        x = np.asarray(images, dtype=np.float64)
        return x.reshape(x.shape[0], -1)
    out = np.asarray(features(images), dtype=np.float64)
    return out.reshape(out.shape[0], -1)


def nearest_neighbour_ratios(samples, references, features: Callable | None = None, chunk_size: int = 512):
    """Nearest and second-nearest reference of every sample, and the ratio of distances.

    Euclidean distances in feature space: |s|^2 + |r|^2 - 2 s.r evaluated in float64 on
    blocks of ``chunk_size`` samples x ``chunk_size`` references (memory bounded by the
    block), then recomputed directly for the two nearest references so that the small
    distance of a near-copy has no cancellation error.

    Parameters
    ----------
    samples : array_like, shape (N, ...)
    references : array_like, shape (M, ...), M >= 2
        E.g. the few-shot targets the samples were discovered from.
    features : callable, optional
        Maps an (n, C, H, W) array to (n, D) features (e.g. :func:`load_feature_extractor`);
        default the flattened values as given (normalized pixels in [-1, 1] for tensor
        files).
    chunk_size : int

    Returns
    -------
    pandas.DataFrame
        One row per sample: ``nearest_index`` (row of ``references``), ``second_index``,
        ``d1``, ``d2`` (feature units), ``ratio`` = d1 / d2 (1 where d1 = d2 = 0).
    """
    import pandas as pd

    s = _features(samples, features)
    r = _features(references, features)
    if r.shape[0] < 2:
        raise ValueError("nearest-neighbour ratios need at least 2 references")
    if s.shape[1] != r.shape[1]:
        raise ValueError(f"samples have {s.shape[1]} features, references {r.shape[1]}")
    r_sq = np.einsum("ij,ij->i", r, r)
    best_d = np.empty((s.shape[0], 2))
    best_i = np.empty((s.shape[0], 2), dtype=np.int64)
    for s0 in range(0, s.shape[0], chunk_size):
        block = s[s0:s0 + chunk_size]
        b_sq = np.einsum("ij,ij->i", block, block)
        cur_d = np.full((block.shape[0], 2), np.inf)
        cur_i = np.zeros((block.shape[0], 2), dtype=np.int64)
        for r0 in range(0, r.shape[0], chunk_size):
            d2 = b_sq[:, None] + r_sq[None, r0:r0 + chunk_size] - 2.0 * block @ r[r0:r0 + chunk_size].T
            cand_d = np.concatenate([cur_d, d2], axis=1)
            cand_i = np.concatenate([cur_i, np.broadcast_to(np.arange(r0, r0 + d2.shape[1]), d2.shape)], axis=1)
            top = np.argpartition(cand_d, 1, axis=1)[:, :2]
            cur_d = np.take_along_axis(cand_d, top, axis=1)
            cur_i = np.take_along_axis(cand_i, top, axis=1)
        best_i[s0:s0 + block.shape[0]] = cur_i
        best_d[s0:s0 + block.shape[0]] = np.linalg.norm(block[:, None, :] - r[cur_i], axis=2)
    order = np.argsort(best_d, axis=1, kind="stable")
    best_d = np.take_along_axis(best_d, order, axis=1)
    best_i = np.take_along_axis(best_i, order, axis=1)
    d1, d2 = best_d[:, 0], best_d[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(d2 > 0, d1 / d2, 1.0)
    return pd.DataFrame({"nearest_index": best_i[:, 0], "second_index": best_i[:, 1],
                         "d1": d1, "d2": d2, "ratio": ratio})


def max_cosine_similarity(samples, references, features: Callable | None = None,
                          center_on_references: bool | None = None) -> np.ndarray:
    """Highest cosine similarity of each sample's features to any reference: (N,) in [-1, 1].

    ``center_on_references`` (default: True for pixel features, False for an extractor)
    subtracts the references' mean feature vector from both first.
    """
    s, r = _features(samples, features), _features(references, features)
    if center_on_references is None:
        center_on_references = features is None
    if center_on_references:
        mean = r.mean(axis=0, keepdims=True)
        s, r = s - mean, r - mean
    sn, rn = np.linalg.norm(s, axis=1), np.linalg.norm(r, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (s @ r.T) / (sn[:, None] * rn[None, :])
    return np.nan_to_num(cos, nan=0.0).max(axis=1) if cos.size else np.zeros(len(s))


def paired_cosine_similarity(set_a, set_b, features: Callable | None = None, center: bool | None = None) -> np.ndarray:
    """Cosine similarity of the features of a_i and b_i for every pair i.

    Parameters
    ----------
    set_a, set_b : array_like, shape (N, ...)
        Row i of each comes from the same initial latent.
    features : callable, optional
        As in :func:`nearest_neighbour_ratios`; default the flattened pixels.
    center : bool, optional
        Subtract each feature vector's own mean first; then the similarity is the Pearson
        correlation of the two images. Default True for pixel features, whose common
        offset (a dark sky at -1) would make any two images look alike, False for a
        feature extractor.

    Returns
    -------
    numpy.ndarray, shape (N,)
        In [-1, 1]; 0 where a vector is constant (zero after centring).
    """
    fa, fb = _features(set_a, features), _features(set_b, features)
    if fa.shape != fb.shape:
        raise ValueError(f"paired sets must have one shape, got {fa.shape} and {fb.shape}")
    if center is None:
        center = features is None
    if center:
        fa = fa - fa.mean(axis=1, keepdims=True)
        fb = fb - fb.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(fa, axis=1) * np.linalg.norm(fb, axis=1)
    dot = np.einsum("ij,ij->i", fa, fb)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, dot / norm, 0.0)


def reproducibility_score(set_a, set_b, threshold: float = 0.6, features: Callable | None = None,
                          center: bool | None = None) -> float:
    """Share of same-latent pairs whose features are near-identical (Zhang et al. 2024).

    Pair i is (a_i, b_i), two samples decoded from the same initial latent (two models,
    two runs, two settings). It counts as reproduced when the cosine similarity of their
    features exceeds ``threshold``. Zhang et al. use SSCD copy-detection features and 0.6;
    pass such an extractor as ``features`` (:func:`load_feature_extractor`). With the
    default pixel features the vectors are centred (Pearson correlation, see
    :func:`paired_cosine_similarity`), so independent images score about 0.

    Returns
    -------
    float
        In [0, 1]; NaN for no pairs.
    """
    similarity = paired_cosine_similarity(set_a, set_b, features, center)
    if similarity.size == 0:
        return float("nan")
    return float(np.mean(similarity > threshold))


def load_feature_extractor(path, device: str = "cpu", batch_size: int = 64) -> Callable[[np.ndarray], np.ndarray]:
    """Load a user-supplied TorchScript (or ``torch.export``) feature model.

    Parameters
    ----------
    path : str or Path
        A file saved by ``torch.jit.save`` (e.g. the SSCD copy-detection model) or by
        ``torch.export.save``; it must map a float32 (n, C, H, W) tensor of images in
        [-1, 1] to (n, D) features (other shapes are flattened per image).
    device : str
    batch_size : int

    Returns
    -------
    callable
        ``extract(images) -> numpy.ndarray (N, D) float64``, batched, gradients off.

    Raises
    ------
    InputError
        The file does not exist or is not a loadable model.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "feature-extractor model file does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in favour of export
            model = torch.jit.load(str(path), map_location=device)
    except Exception as jit_exc:  # torch raises RuntimeError / ValueError for foreign files
        try:
            model = torch.export.load(str(path)).module().to(device)
        except Exception:
            raise InputError(path, f"is not a TorchScript or torch.export model ({jit_exc})") from None
    if hasattr(model, "eval"):
        model.eval()

    def extract(images) -> np.ndarray:
        x = np.asarray(images, dtype=np.float32)
        if x.ndim != 4:
            raise ValueError(f"the feature extractor takes (N, C, H, W) images, got shape {x.shape}")
        out = []
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                batch = torch.from_numpy(x[start:start + batch_size]).to(device)
                try:
                    feats = model(batch)
                except Exception as exc:
                    raise InputError(path, f"the model failed on a batch of shape {tuple(batch.shape)} "
                                           f"({type(exc).__name__}: {exc})") from None
                out.append(feats.reshape(feats.shape[0], -1).double().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, 0))

    return extract

