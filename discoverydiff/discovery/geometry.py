"""Latent geometry: slerp, distances and angles from dot products, and the two clusters' summary table.

Inverted latents of an unseen domain form a concentrated, Gaussian-like cluster apart from the
in-domain (ID) latents of the base model. Every distance and angle here comes from Gram matrices
(dot products), so a batch of points is measured against all references with a few matrix
products and no Python loop over points or references. :class:`References` holds the target and
ID latents flattened once, with the dot products every scoring reuses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch


def _flat(x) -> torch.Tensor:
    x = torch.as_tensor(x)
    return x.reshape(x.shape[0], -1).to(torch.float64)


def slerp_coefficients(cos: torch.Tensor, w: torch.Tensor, eps: float = 1e-7) -> tuple[torch.Tensor, torch.Tensor]:
    """(ca, cb) with ``slerp(a, b, w) = ca a + cb b``, for ``cos`` the cosine of the angle between a and b.

    ``sin((1 - w) theta) / sin(theta)`` and ``sin(w theta) / sin(theta)``; where a and b are
    (nearly) parallel (sin theta < eps), ``1 - w`` and ``w``, the formula's limit.
    """
    theta = torch.arccos(cos.clamp(-1.0, 1.0))
    sin = torch.sin(theta)
    safe = sin > eps
    sin_safe = torch.where(safe, sin, torch.ones_like(sin))
    ca = torch.where(safe, torch.sin((1 - w) * theta) / sin_safe, 1 - w)
    cb = torch.where(safe, torch.sin(w * theta) / sin_safe, w)
    return ca, cb


def slerp(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor | float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` (B, ...) at weights ``w`` (B,) or scalar.

    w = 0 gives ``a``, w = 1 gives ``b``; in between, as in the public code,
    ``sin((1 - w) theta) / sin(theta) a + sin(w theta) / sin(theta) b`` with theta the angle
    between them, for vectors of any shape. Where a and b are (nearly) parallel
    (sin theta < eps) it uses linear interpolation, the formula's limit, instead of
    dividing by zero (the public code returns NaN there).
    """
    shape = a.shape
    a2, b2 = a.reshape(shape[0], -1).double(), b.reshape(shape[0], -1).double()
    w = torch.as_tensor(w, dtype=torch.float64).reshape(-1, 1).expand(shape[0], 1)
    cos = (a2 * b2).sum(1, keepdim=True) / (a2.norm(dim=1, keepdim=True) * b2.norm(dim=1, keepdim=True)).clamp_min(
        1e-300)
    ca, cb = slerp_coefficients(cos, w, eps)
    return (ca * a2 + cb * b2).reshape(shape).to(a.dtype)


def angles_deg(cos: torch.Tensor) -> torch.Tensor:
    return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))


def pairwise_distances(x, y) -> torch.Tensor:
    """Euclidean distances (N, M) between rows of x and y, from dot products."""
    x, y = _flat(x), _flat(y)
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T
    return sq.clamp_min(0).sqrt()


def angles_at_origin(x, y) -> torch.Tensor:
    """Angles in degrees (N, M) at the origin between rows of x and y."""
    x, y = _flat(x), _flat(y)
    cos = (x @ y.T) / (x.norm(dim=1)[:, None] * y.norm(dim=1)[None, :]).clamp_min(1e-300)
    return angles_deg(cos)


def angles_at_points(points, refs, pair_index: torch.Tensor | None = None) -> torch.Tensor:
    """Angle in degrees at each point p between (a - p) and (b - p) for pairs (a, b) of refs.

    Parameters
    ----------
    points : (N, ...) the vertices.
    refs : (R, ...) reference latents; by default all R (R - 1) / 2 pairs are used.
    pair_index : (P, 2) long, optional; or (N, P, 2) per point.

    Returns
    -------
    (N, P) angles, from (a-p).(b-p) = a.b - a.p - b.p + p.p.
    """
    p, r = _flat(points), _flat(refs)
    if pair_index is None:
        pair_index = torch.combinations(torch.arange(r.shape[0]), 2)
    rr = r @ r.T  # (R, R)
    pr = p @ r.T  # (N, R)
    pp = (p * p).sum(1)  # (N,)
    rsq = torch.diagonal(rr)
    if pair_index.dim() == 2:
        i, j = pair_index[:, 0], pair_index[:, 1]
        dot = rr[i, j][None, :] - pr[:, i] - pr[:, j] + pp[:, None]
        ni = (rsq[i][None, :] - 2 * pr[:, i] + pp[:, None]).clamp_min(0).sqrt()
        nj = (rsq[j][None, :] - 2 * pr[:, j] + pp[:, None]).clamp_min(0).sqrt()
    else:
        i, j = pair_index[..., 0], pair_index[..., 1]
        rows = torch.arange(p.shape[0])[:, None]
        dot = rr[i, j] - pr[rows, i] - pr[rows, j] + pp[:, None]
        ni = (rsq[i] - 2 * pr[rows, i] + pp[:, None]).clamp_min(0).sqrt()
        nj = (rsq[j] - 2 * pr[rows, j] + pp[:, None]).clamp_min(0).sqrt()
    return angles_deg(dot / (ni * nj).clamp_min(1e-300))


@dataclass
class References:
    """Target and ID latents flattened to float64 once, with the dot products every scoring reuses."""

    t: torch.Tensor  # (N_t, D)
    i: torch.Tensor  # (N_id, D)
    tt: torch.Tensor  # (N_t, N_t) Gram matrix of the targets
    ti: torch.Tensor  # (N_t, N_id)
    t_sq: torch.Tensor  # (N_t,) squared norms
    i_sq: torch.Tensor  # (N_id,)

    @classmethod
    def build(cls, target, id_latents) -> References:
        t, i = _flat(target), _flat(id_latents)
        tt = t @ t.T
        return cls(t, i, tt, t @ i.T, torch.diagonal(tt).clone(), (i * i).sum(1))

    @classmethod
    def of(cls, target, id_latents) -> References:
        """``target`` itself when it is already a :class:`References`, else built from both sets."""
        return target if isinstance(target, References) else cls.build(target, id_latents)


def latent_geometry(target, id_latents) -> pd.DataFrame:
    """Summary of the two clusters: one row per (statistic, set) with mean, std, min, max, n.

    Statistics: ``norm``; ``pairwise_distance`` within the set; ``angle_origin`` between
    pairs of the set (degrees); ``angle_pairs``: angle at each member between pairs of the
    other members (degrees); ``dist_target_to_id``; and the cluster separation
    ``centre_distance`` (between the two means) against ``spread`` (RMS distance of
    members from their mean), whose ratio ``separation`` > 1 means the clusters are apart.
    """
    t, i = _flat(target), _flat(id_latents)
    rows = []

    def add(stat, which, values, units):
        v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
        rows.append({"statistic": stat, "set": which, "units": units, "mean": float(v.mean()),
                     "std": float(v.std()) if v.numel() > 1 else 0.0, "min": float(v.min()),
                     "max": float(v.max()), "n": int(v.numel())})

    d = t.shape[1]
    for name, x in (("target", t), ("id", i)):
        iu = torch.triu_indices(len(x), len(x), 1)
        add("norm", name, x.norm(dim=1), "latent units")
        add("norm_over_sqrt_d", name, x.norm(dim=1) / math.sqrt(d), "")
        add("pairwise_distance", name, pairwise_distances(x, x)[iu[0], iu[1]], "latent units")
        add("angle_origin", name, angles_at_origin(x, x)[iu[0], iu[1]], "deg")
        if len(x) >= 3:
            add("angle_pairs", name, _leave_one_out_pair_angles(x), "deg")
    add("dist_target_to_id", "target", pairwise_distances(t, i), "latent units")
    spread = {n: float(((x - x.mean(0)) ** 2).sum(1).mean().sqrt()) for n, x in (("target", t), ("id", i))}
    centre = float((t.mean(0) - i.mean(0)).norm())
    add("centre_distance", "target-id", centre, "latent units")
    for n, s in spread.items():
        add("spread", n, s, "latent units")
    add("separation", "target-id", centre / max(np.mean(list(spread.values())), 1e-300), "")
    return pd.DataFrame(rows)


def _leave_one_out_pair_angles(x: torch.Tensor, max_pairs: int = 2000) -> torch.Tensor:
    """Angles at each member between pairs of the other members (sub-sampled to max_pairs)."""
    n = len(x)
    pairs = torch.combinations(torch.arange(n), 2)
    if len(pairs) > max_pairs:
        pairs = pairs[torch.randperm(len(pairs), generator=torch.Generator().manual_seed(0))[:max_pairs]]
    ang = angles_at_points(x, x, pairs)  # (n, P)
    keep = (pairs[None, :, 0] != torch.arange(n)[:, None]) & (pairs[None, :, 1] != torch.arange(n)[:, None])
    return ang[keep]
