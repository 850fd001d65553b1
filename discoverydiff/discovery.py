"""Latent geometry and geometric sampling of new target-domain latents (docs/method.md, sections 3-4).

Inverted latents of an unseen domain form a concentrated, Gaussian-like cluster apart
from the in-domain (ID) latents of the base model. New latents are proposed by spherical
interpolation (slerp) and accepted when their geometry matches the target cluster's on
three criteria, each averaged over ``n_ref`` random reference latents. Two proposal
schemes (``discovery.scheme``):

- ``pairs`` (default): between two distinct few-shot targets, at weights in
  [min_weight, 1 - min_weight], keeping the targets' share of their common direction
  (:class:`PairCandidates`). Every candidate is a mixture of two real members, never mostly
  one of them.
- ``prior``: the public code's slerp from one target towards a draw of a Gaussian fitted to
  the targets. Measured on the demo, the fitted mean contains each target (m . t_j exceeds
  the targets' mutual dot products about threefold at 16 targets), draws sit at smaller
  angles to the targets than the targets to each other, and only weights of a few percent
  pass: the accepted latents are near-copies of a handful of targets.

The criteria:

1. ``dist_to_id``: mean Euclidean distance to ID latents;
2. ``angle_origin``: mean angle at the origin to target latents (degrees);
3. ``angle_pairs``: mean angle at the candidate between pairs of target latents (degrees).

The public code compares them with constants (611.4, 88 deg, 60 deg) that belong to one
model/domain pair at 3x256x256. Here every target value and its spread are *measured*
on this run's inverted targets (each target latent scored against the other targets,
exactly as a candidate is), and a candidate passes a criterion when it lies within
``tolerance`` spreads of the measured mean. All distances and angles come from Gram
matrices (dot products), so a batch of candidates is scored against all references with
a few matrix products and no Python loop over candidates or references.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from .errors import ConfigError, DiscoveryDiffError, InputError

log = logging.getLogger(__name__)

CRITERIA = ("dist_to_id", "angle_origin", "angle_pairs")


# ----------------------------------------------------------------------------- basic geometry
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


# ----------------------------------------------------------------------------- geometry table
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


# ----------------------------------------------------------------------------- prior
@dataclass
class GaussianPrior:
    """Per-dimension mean and a scalar or diagonal variance, fitted to latents (N, C, H, W)."""

    mean: torch.Tensor
    var: torch.Tensor  # scalar () or (D,)
    fitted_to: str = "target"

    @classmethod
    def fit(cls, latents, variance: str = "scalar", fitted_to: str = "target") -> GaussianPrior:
        x = _flat(latents)
        if x.shape[0] < 2:
            raise ConfigError("fitting the discovery prior needs at least 2 latents")
        mean = x.mean(0)
        var_d = x.var(0, unbiased=True)
        if variance == "scalar":
            var = var_d.mean()
        elif variance == "diagonal":
            var = var_d.clamp_min(1e-12)
        else:
            raise ConfigError(f"discovery.prior_variance must be 'scalar' or 'diagonal', got {variance!r}")
        return cls(mean, var, fitted_to)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn((n, self.mean.numel()), generator=generator, dtype=torch.float64)
        return self.mean + noise * self.var.sqrt()


# ----------------------------------------------------------------------------- acceptance
@dataclass
class AcceptanceTargets:
    """Measured mean and spread of each criterion on the inverted targets."""

    mean: dict
    std: dict
    tolerance: dict

    def window(self, name: str) -> tuple[float, float]:
        half = self.tolerance[name] * self.std[name]
        return self.mean[name] - half, self.mean[name] + half


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


def criterion_values(points, target, id_latents, n_ref: int, generator: torch.Generator,
                     exclude_self: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 3) values of the three criteria for each point, over ``n_ref`` random references.

    Each point draws its own ``n_ref`` ID latents, ``n_ref`` target latents and ``n_ref``
    pairs of target latents. ``exclude_self[k]`` is the index (or indices, (N, k)) of the
    targets point k must not draw: itself when the points are the targets, its sources when
    they are candidates. ``target`` may be a :class:`References` (then ``id_latents`` is
    ignored).
    """
    refs = References.of(target, id_latents)
    p = _flat(points)
    return _criteria_from_dots(p @ refs.t.T, p @ refs.i.T, (p * p).sum(1), refs, n_ref, generator, exclude_self)


def _criteria_from_dots(pt: torch.Tensor, pi: torch.Tensor, pp: torch.Tensor, refs: References, n_ref: int,
                        generator: torch.Generator, exclude_self: torch.Tensor | None = None) -> torch.Tensor:
    """The criteria of N points from their dot products with the targets (N, N_t) and IDs (N, N_id)
    and their squared norms (N,): no pass over the D dimensions. ``exclude_self`` (N,) or (N, k)
    holds target indices each point must not use as references (itself, or its sources)."""
    n, n_t, n_i = pt.shape[0], pt.shape[1], pi.shape[1]
    if exclude_self is not None and exclude_self.dim() == 1:
        exclude_self = exclude_self[:, None]
    avail = n_t - (exclude_self.shape[1] if exclude_self is not None else 0)
    if avail < 2:
        raise ConfigError(f"need at least 2 reference target latents, have {avail}")
    k_ref = min(n_ref, avail)

    def draw_targets(count):
        # random distinct target indices per point, skipping the point's own targets
        scores = torch.rand((n, n_t), generator=generator, dtype=torch.float64)
        if exclude_self is not None:
            scores.scatter_(1, exclude_self, 2.0)
        return scores.argsort(dim=1)[:, :count]

    rows = torch.arange(n)[:, None]
    id_idx = torch.rand((n, n_i), generator=generator, dtype=torch.float64).argsort(dim=1)[:, :min(n_ref, n_i)]
    sq_dist = pp[:, None] - 2 * pi[rows, id_idx] + refs.i_sq[id_idx]
    dist_to_id = sq_dist.clamp_min(0).sqrt().mean(1)
    t_idx = draw_targets(k_ref)
    cos0 = pt[rows, t_idx] / (pp.sqrt()[:, None] * refs.t_sq[t_idx].sqrt()).clamp_min(1e-300)
    ang0 = angles_deg(cos0).mean(1)
    a_idx, b_idx = draw_targets(k_ref), draw_targets(k_ref)
    b_idx = torch.where(a_idx == b_idx, t_idx, b_idx)  # avoid degenerate (a, a) pairs
    valid = a_idx != b_idx
    # (a - p).(b - p) = a.b - a.p - b.p + p.p
    dot = refs.tt[a_idx, b_idx] - pt[rows, a_idx] - pt[rows, b_idx] + pp[:, None]
    na = (refs.t_sq[a_idx] - 2 * pt[rows, a_idx] + pp[:, None]).clamp_min(0).sqrt()
    nb = (refs.t_sq[b_idx] - 2 * pt[rows, b_idx] + pp[:, None]).clamp_min(0).sqrt()
    ang_pairs = angles_deg(dot / (na * nb).clamp_min(1e-300))
    ang_pairs = (ang_pairs * valid).sum(1) / valid.sum(1).clamp_min(1)
    return torch.stack([dist_to_id, ang0, ang_pairs], dim=1)


def measure_targets(target, id_latents, n_ref: int, tolerance: dict | float,
                    generator: torch.Generator) -> AcceptanceTargets:
    """Mean and spread of the criteria over the inverted targets, each scored like a candidate."""
    refs = References.of(target, id_latents)
    n_t = refs.t.shape[0]
    values = _criteria_from_dots(refs.tt, refs.ti, refs.t_sq, refs, n_ref, generator, exclude_self=torch.arange(n_t))
    tol = {c: float(tolerance) for c in CRITERIA} if not isinstance(tolerance, dict) else {
        c: float(tolerance.get(c, 1.0)) for c in CRITERIA}
    return AcceptanceTargets(
        mean={c: float(values[:, k].mean()) for k, c in enumerate(CRITERIA)},
        std={c: float(values[:, k].std()) for k, c in enumerate(CRITERIA)},
        tolerance=tol,
    )


def passes(values: torch.Tensor, targets: AcceptanceTargets) -> torch.Tensor:
    """(N, 3) bool: each criterion inside its window."""
    lo = torch.tensor([targets.window(c)[0] for c in CRITERIA], dtype=values.dtype)
    hi = torch.tensor([targets.window(c)[1] for c in CRITERIA], dtype=values.dtype)
    return (values >= lo) & (values <= hi)


class TooFewAccepted(DiscoveryDiffError):
    """Raised when the candidate budget ran out before enough latents were accepted."""


@dataclass
class DiscoveryResult:
    latents: torch.Tensor  # (N, C, H, W)
    names: list
    criteria: torch.Tensor  # (N, 3)
    targets: AcceptanceTargets
    n_candidates: int
    pass_counts: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def acceptance_rate(self) -> float:
        return len(self.names) / max(self.n_candidates, 1)


@dataclass
class SlerpCandidates:
    """Candidates ``slerp(t[src[k]], draws[k], w)`` for every pair k and weight w, known by their
    dot products with the references.

    A candidate is ``ca a + cb b`` (a = t[src[k]], b = draws[k]), so its dot products with the
    references follow from those of a (the precomputed Gram matrices) and of b: one
    (pairs x references) product serves all the weights of a pair, and a candidate is formed
    in D dimensions only when it is accepted (:meth:`latent`).
    """

    refs: References
    src: torch.Tensor  # (P,) target index of each pair
    draws: torch.Tensor  # (P, D) prior draws
    pair: torch.Tensor  # (N,) pair of each candidate
    w: torch.Tensor  # (N,) slerp weight
    ca: torch.Tensor  # (N,) coefficients: candidate = ca a + cb b
    cb: torch.Tensor
    pt: torch.Tensor  # (N, N_t) candidate . targets
    pi: torch.Tensor  # (N, N_id) candidate . ID latents
    pp: torch.Tensor  # (N,) squared norms

    @classmethod
    def score(cls, refs: References, src: torch.Tensor, draws: torch.Tensor, weights: torch.Tensor):
        b_t, b_i, b_sq = draws @ refs.t.T, draws @ refs.i.T, (draws * draws).sum(1)
        a_b, a_sq = (refs.t[src] * draws).sum(1), refs.t_sq[src]
        cos = a_b / (a_sq.sqrt() * b_sq.sqrt()).clamp_min(1e-300)
        pair = torch.arange(len(src)).repeat_interleave(len(weights))
        w = weights.repeat(len(src))
        ca, cb = slerp_coefficients(cos[pair], w)
        pt = ca[:, None] * refs.tt[src[pair]] + cb[:, None] * b_t[pair]
        pi = ca[:, None] * refs.ti[src[pair]] + cb[:, None] * b_i[pair]
        pp = ca**2 * a_sq[pair] + 2 * ca * cb * a_b[pair] + cb**2 * b_sq[pair]
        return cls(refs, src, draws, pair, w, ca, cb, pt, pi, pp)

    def latent(self, j: int) -> torch.Tensor:
        """Candidate j, flat (D,) float64."""
        k = int(self.pair[j])
        return self.ca[j] * self.refs.t[self.src[k]] + self.cb[j] * self.draws[k]


@dataclass
class PairCandidates:
    """Candidates between two targets a and b, known by their dot products with the references.

    With u the unit vector along the mean of the *other* targets (so neither source sees
    itself in it), each target splits into its component along u, alpha = t . u, and the rest
    r = t - alpha u. A candidate at weight w keeps a target's share of the common direction,
    ((1 - w) alpha_a + w alpha_b) u, and moves along the great circle between r_a and r_b
    (slerp), rescaled to (1 - w) |r_a| + w |r_b|. Plain slerp between two targets would scale
    the component they share by up to 1 / cos(theta / 2) (1.4 for orthogonal residuals) and
    shift the decoded maps' mean level (measured on the demo: +0.28 dex of G0; saturated
    galaxy images). The candidate is g S + A t_a + B t_b with S the sum of all targets, so its
    dot products follow from the Gram matrices and it is formed in D dimensions only when
    accepted (:meth:`latent`).
    """

    refs: References
    a: torch.Tensor  # (N,) source indices
    b: torch.Tensor
    w: torch.Tensor  # (N,) weights
    coef: torch.Tensor  # (N, 3): candidate = coef0 S + coef1 t_a + coef2 t_b
    pt: torch.Tensor
    pi: torch.Tensor
    pp: torch.Tensor

    @classmethod
    def score(cls, refs: References, a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> PairCandidates:
        tt, ti = refs.tt, refs.ti
        s_t, s_i = tt.sum(0), ti.sum(0)  # S . t_j, S . i_j
        s_s = s_t.sum()
        taa, tbb, tab = tt[a, a], tt[b, b], tt[a, b]
        # m = S - t_a - t_b, the sum of the other targets
        m_sq = s_s - 2 * s_t[a] - 2 * s_t[b] + taa + tbb + 2 * tab
        m_norm = m_sq.clamp_min(1e-300).sqrt()
        alpha_a = (s_t[a] - taa - tab) / m_norm
        alpha_b = (s_t[b] - tab - tbb) / m_norm
        ra_sq, rb_sq = (taa - alpha_a**2).clamp_min(0), (tbb - alpha_b**2).clamp_min(0)
        ra_rb = tab - alpha_a * alpha_b
        cos = ra_rb / (ra_sq.sqrt() * rb_sq.sqrt()).clamp_min(1e-300)
        ca, cb = slerp_coefficients(cos, w)
        r_sq = ca**2 * ra_sq + 2 * ca * cb * ra_rb + cb**2 * rb_sq
        scale = ((1 - w) * ra_sq.sqrt() + w * rb_sq.sqrt()) / r_sq.clamp_min(1e-300).sqrt()
        beta = (1 - w) * alpha_a + w * alpha_b
        g = (beta - scale * (ca * alpha_a + cb * alpha_b)) / m_norm
        coef_a, coef_b = scale * ca - g, scale * cb - g
        pt = g[:, None] * s_t[None, :] + coef_a[:, None] * tt[a] + coef_b[:, None] * tt[b]
        pi = g[:, None] * s_i[None, :] + coef_a[:, None] * ti[a] + coef_b[:, None] * ti[b]
        pp = (g**2 * s_s + coef_a**2 * taa + coef_b**2 * tbb + 2 * g * coef_a * s_t[a] + 2 * g * coef_b * s_t[b]
              + 2 * coef_a * coef_b * tab)
        return cls(refs, a, b, w, torch.stack([g, coef_a, coef_b], 1), pt, pi, pp)

    def latent(self, j: int) -> torch.Tensor:
        """Candidate j, flat (D,) float64."""
        g, ca, cb = self.coef[j]
        return g * self.refs.t.sum(0) + ca * self.refs.t[self.a[j]] + cb * self.refs.t[self.b[j]]


SCHEMES = ("pairs", "prior")


def _advice(n_accepted, n_accept, tried, max_candidates, pass_counts, joint, deviations, targets,
            quota_blocked: int = 0, quotas: str = "") -> str:
    """Why discovery stopped short, and what would complete it, from the joint pass rate."""
    rate = joint / max(tried, 1)
    text = (f"discovery accepted {n_accepted} of {n_accept} latents from {tried} candidates "
            f"(joint pass rate of all criteria {rate:.2e}); pass rates per criterion: "
            + ", ".join(f"{c} {pass_counts[c] / max(tried, 1):.1%}" for c in CRITERIA) + ". ")
    if quota_blocked and joint >= n_accept:
        # enough candidates passed; the per-target / per-pair limits turned them away
        return text + (f"{quota_blocked} candidates that passed were turned away by the quotas ({quotas}): raise "
                       "discovery.max_per_pair or discovery.max_per_source, or ask for fewer latents "
                       "(discovery.n_samples, discovery.screen.oversample).")
    if joint > 0:
        budget = int(math.ceil(1.5 * n_accept / rate))
        text += f"At that rate discovery.max_candidates = {budget} would complete it"
    else:
        text += "No candidate passed all criteria"
    # the least widening (per criterion, never below the current tolerance) at which twice the
    # needed share of the candidates seen would have passed all criteria together
    dev = torch.cat(deviations).double()
    tol = torch.tensor([targets.tolerance[c] for c in CRITERIA], dtype=dev.dtype)
    need = min(1.0, 2.0 * n_accept / max(tried, 1))
    for level in torch.linspace(0.0, 1.0, 201, dtype=dev.dtype):
        wider = torch.maximum(tol, torch.quantile(dev, float(level), dim=0))
        if float((dev <= wider).all(1).double().mean()) >= need:
            break
    changed = [(c, float(wider[k])) for k, c in enumerate(CRITERIA) if wider[k] > tol[k] * (1 + 1e-9)]
    if changed:
        text += "; or widen " + ", ".join(f"discovery.tolerance.{c} from {targets.tolerance[c]:.3g} to {v:.3g}"
                                          for c, v in changed)
    return text + f" (max_candidates now {max_candidates})."


def discover(target, id_latents, n_accept: int, seed: int = 0, n_ref: int = 10,
             n_slerp: int = 20, tolerance: dict | float = 1.0, prior: GaussianPrior | None = None,
             max_candidates: int = 100_000, batch_candidates: int = 1024, target_names=None,
             scheme: str = "pairs", min_weight: float | None = None,
             max_per_source: int | None = None, max_per_pair: int | None = None) -> DiscoveryResult:
    """Geometric sampling: slerp candidates, accepted when all three criteria fit the targets.

    Parameters
    ----------
    target : (N_t, C, H, W) inverted target latents.
    id_latents : (N_id, C, H, W) inverted base-model samples.
    n_accept : latents to discover.
    n_slerp : interpolation points per pair, at k / (n_slerp + 1), k = 1 .. n_slerp (paper:
        20 points at k/21), of which those in [min_weight, 1 - min_weight] (pairs) or
        [min_weight, 1) (prior) are used.
    tolerance : spreads (std of the criterion over the targets) allowed per criterion.
    prior : ``prior`` scheme; defaults to the Gaussian fitted to the targets, scalar variance.
    max_candidates : the budget; when it is spent with fewer than ``n_accept`` accepted,
        :class:`TooFewAccepted` gives the joint pass rate of all criteria and what would
        complete the run (a budget, or a wider tolerance, never a tighter one).
    scheme : ``pairs`` (default): candidates between two distinct few-shot targets
        (:class:`PairCandidates`), weights in [min_weight, 1 - min_weight] (default 0.4), so a
        candidate is never mostly one target. ``prior``: the public code's slerp from a
        target towards a draw of the fitted Gaussian prior (default min_weight 0: every weight).
    max_per_source : a target seeds at most this many accepted latents (default
        ceil(2 n_accept / N_t) + 1 for pairs, ceil(n_accept / N_t) + 1 for prior), so that the
        discovered set spreads over the targets instead of collapsing on a few. Default quotas
        grow by one each time a whole batch's passing candidates were all over them
        (``settings["quotas_raised"]``); quotas given explicitly never change.
    max_per_pair : ``pairs`` scheme: accepted latents one pair of targets may seed (default
        ceil(n_accept / number of pairs), so 1 whenever the targets give enough pairs).
        Neighbouring weights of one pair decode to nearly the same map: without the limit the
        demo's 16 radiation latents came from 6 pairs, three weights each.

    Every candidate is scored without its own source target(s) among its references, as the
    targets are when their windows are measured.
    """
    if scheme not in SCHEMES:
        raise ConfigError(f"discovery.scheme must be one of {SCHEMES}, got {scheme!r}")
    shape = tuple(torch.as_tensor(target).shape[1:])
    refs = References.build(target, id_latents)
    t = refs.t
    n_t = len(t)
    if scheme == "pairs" and n_t < 4:
        raise ConfigError(f"discovery.scheme 'pairs' needs at least 4 few-shot targets (2 sources and 2 "
                          f"references), have {n_t}")
    names = list(target_names) if target_names is not None else [f"target{k}" for k in range(n_t)]
    g = torch.Generator().manual_seed(int(seed))
    targets = measure_targets(refs, None, n_ref, tolerance, g)
    if min_weight is None:
        min_weight = 0.4 if scheme == "pairs" else 0.0
    weights = torch.arange(1, n_slerp + 1, dtype=torch.float64) / (n_slerp + 1)
    upper = 1.0 - min_weight if scheme == "pairs" else 1.0
    weights = weights[(weights >= min_weight - 1e-12) & (weights <= upper + 1e-12)]
    if len(weights) == 0:
        raise ConfigError(f"no slerp weight k/{n_slerp + 1} lies in [{min_weight}, {upper}]: "
                          "lower discovery.min_weight or raise n_slerp")
    per_source = 2 if scheme == "pairs" else 1
    # quotas left at their defaults start at the even share and grow by one whenever a whole batch
    # had passing candidates but every one was turned away by them: not every pair passes, so the
    # even share alone can leave a run short (measured: 61 of 64 with 12 targets, 66 pairs)
    auto_source, auto_pair = max_per_source is None, max_per_pair is None
    if auto_source:
        max_per_source = math.ceil(per_source * n_accept / n_t) + 1
    n_target_pairs = n_t * (n_t - 1) // 2
    if auto_pair:
        max_per_pair = math.ceil(n_accept / n_target_pairs)
    quotas_raised = 0
    prior = prior or (GaussianPrior.fit(t) if scheme == "prior" else None)
    uses = torch.zeros(n_t, dtype=torch.long)
    pair_uses: dict[tuple[int, int], int] = {}
    accepted, acc_names, acc_values, acc_sources = [], [], [], []
    tried, joint, pass_counts, quota_blocked = 0, 0, dict.fromkeys(CRITERIA, 0), 0
    deviations = []
    std = torch.tensor([max(targets.std[c], 1e-300) for c in CRITERIA], dtype=torch.float64)
    mean = torch.tensor([targets.mean[c] for c in CRITERIA], dtype=torch.float64)
    while len(acc_names) < n_accept and tried < max_candidates:
        n_pairs = max(1, min(batch_candidates, max_candidates - tried) // len(weights))
        if scheme == "pairs":
            a = torch.randint(n_t, (n_pairs,), generator=g)
            b = (a + 1 + torch.randint(n_t - 1, (n_pairs,), generator=g)) % n_t  # distinct from a
            a, b = a.repeat_interleave(len(weights)), b.repeat_interleave(len(weights))
            w = weights.repeat(n_pairs)
            cand = PairCandidates.score(refs, a, b, w)
            sources = torch.stack([a, b], 1)
        else:
            src = torch.randint(n_t, (n_pairs,), generator=g)
            cand = SlerpCandidates.score(refs, src, prior.sample(n_pairs, g), weights)
            sources = src[cand.pair][:, None]
            w = cand.w
        tried += len(w)
        values = _criteria_from_dots(cand.pt, cand.pi, cand.pp, refs, n_ref, g, exclude_self=sources)
        ok = passes(values, targets)
        for k, c in enumerate(CRITERIA):
            pass_counts[c] += int(ok[:, k].sum())
        joint += int(ok.all(1).sum())
        deviations.append(((values - mean).abs() / std).float())
        n_before, blocked_before = len(acc_names), quota_blocked
        for j in ok.all(1).nonzero().flatten().tolist():
            if len(acc_names) >= n_accept:
                break
            own = sources[j]
            if bool((uses[own] >= max_per_source).any()):
                quota_blocked += 1
                continue
            pair = tuple(sorted(own.tolist()))
            if scheme == "pairs" and pair_uses.get(pair, 0) >= max_per_pair:
                quota_blocked += 1
                continue
            pair_uses[pair] = pair_uses.get(pair, 0) + 1
            uses[own] += 1
            accepted.append(cand.latent(j))
            acc_values.append(values[j])
            acc_sources.append(own.tolist())
            seeds = "+".join(names[int(i)] for i in own)
            acc_names.append(f"discovered_{len(acc_names):05d}<-{seeds}@w={float(w[j]):.3f}")
        if len(acc_names) == n_before and quota_blocked > blocked_before and (auto_source or auto_pair):
            max_per_source += int(auto_source)
            max_per_pair += int(auto_pair and scheme == "pairs")
            quotas_raised += 1
            log.info("every passing candidate of a batch was over a quota: raised to max_per_source %d, "
                     "max_per_pair %d", max_per_source, max_per_pair)
    if len(acc_names) < n_accept:
        quotas = (f"max_per_source {max_per_source}" + (f", max_per_pair {max_per_pair} ({n_t} targets give "
                                                        f"{n_target_pairs} pairs)" if scheme == "pairs" else ""))
        raise TooFewAccepted(_advice(len(acc_names), n_accept, tried, max_candidates, pass_counts, joint,
                                     deviations, targets, quota_blocked, quotas))
    result = DiscoveryResult(torch.stack(accepted).reshape(-1, *shape).float(), acc_names,
                             torch.stack(acc_values), targets, tried, pass_counts)
    result.settings = {"scheme": scheme, "min_weight": float(min_weight), "weights": weights.tolist(),
                       "max_per_source": int(max_per_source),
                       "max_per_pair": int(max_per_pair) if scheme == "pairs" else None,
                       "quotas_raised": quotas_raised,
                       "joint_pass_rate": joint / max(tried, 1),
                       "reference_exclusion": "own source target(s)", "sources": acc_sources}
    return result


# ----------------------------------------------------------------------------- files
def screen_oversample(cfg: dict) -> int:
    """``discovery.screen.oversample`` of a config section (1, no screening, when absent)."""
    oversample = int((cfg.get("screen") or {}).get("oversample", 1))
    if oversample < 1:
        raise ConfigError(f"discovery.screen.oversample must be at least 1, got {oversample}")
    return oversample


def screen_steps(cfg: dict, n_steps: int) -> tuple[int, bool]:
    """(decoding steps of the screening, whether they are the generation's own) from
    ``discovery.screen.preview_steps``: an integer of at least 2, or ``full`` for ``n_steps``."""
    steps = (cfg.get("screen") or {}).get("preview_steps", 10)
    if steps == "full":
        return int(n_steps), True
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ConfigError(f"discovery.screen.preview_steps must be an integer of at least 2 or 'full', got {steps!r}")
    return steps, False


def discover_from_files(latents_path, id_latents_path, discovered_path, geometry_path, cfg: dict,
                        seed: int = 0, model=None, options=None, screening_path=None,
                        tensors_path=None) -> DiscoveryResult:
    """Run discovery on tensor files and write the accepted latents and the geometry table.

    Parameters
    ----------
    latents_path : inverted few-shot targets (rule ``invert``).
    id_latents_path : inverted base-model samples (rule ``sample_base``).
    discovered_path : output tensor file of accepted latents; datasets ``criteria``
        (N, 3) hold each accepted latent's criterion values, attrs the acceptance record.
    geometry_path : output CSV of :func:`latent_geometry` plus the acceptance windows.
    cfg : the config's ``discovery`` section (n_samples, n_ref, n_slerp, tolerance, scheme,
        min_weight, max_per_source, max_per_pair, prior_fit, prior_variance, max_candidates,
        batch_candidates, screen). ``screen: {oversample, preview_steps, select, restarts}`` with
        oversample > 1 (the workflow's default is 3; without the key, no screening) accepts
        oversample x n_samples latents and keeps the n_samples whose decoded previews fit the
        targets' (:mod:`discoverydiff.screening`); it needs ``model`` and ``options`` (the
        engine), and writes every candidate's verdict to ``screening_path``. With
        ``preview_steps: full`` the candidates are decoded with the generation's own walk and
        compared with the few-shot maps of ``tensors_path`` (the dataset's tensors.h5) instead
        of previews of the target latents. The screened-out latents stay in the output as
        dataset ``screened_out`` (names in the record).
    """
    from .store import TensorFileWriter, read_tensor_file, write_csv_atomic

    target = read_tensor_file(latents_path)
    ids = read_tensor_file(id_latents_path)
    if target.x.shape[1:] != ids.x.shape[1:]:
        raise ConfigError(f"target latents {target.x.shape[1:]} and ID latents {ids.x.shape[1:]} differ in shape")
    for key in ("t0", "n_steps", "model"):
        if target.attrs.get(key) != ids.attrs.get(key):
            log.warning("target and ID latents differ in %s (%r vs %r)", key, target.attrs.get(key),
                        ids.attrs.get(key))
    fit_to = cfg.get("prior_fit", "target")
    if fit_to not in ("target", "id"):
        raise ConfigError(f"discovery.prior_fit must be 'target' or 'id', got {fit_to!r}")
    scheme = cfg.get("scheme", "pairs")
    prior = None
    if scheme == "prior":
        prior = GaussianPrior.fit(target.x if fit_to == "target" else ids.x, cfg.get("prior_variance", "scalar"),
                                  fit_to)
    t = torch.from_numpy(target.x)
    n_samples = int(cfg.get("n_samples", 32))
    oversample = screen_oversample(cfg)
    if oversample > 1 and (model is None or options is None or screening_path is None):
        raise ConfigError("discovery.screen.oversample > 1 decodes previews: it needs the base model, the run "
                          "options and a screening table path (or set oversample: 1)")
    reference = None
    if oversample > 1:  # settings checked before the search, so a bad one costs no time
        steps, full = screen_steps(cfg, int(target.attrs["n_steps"]))
        restarts = int(cfg["screen"].get("restarts", 20))
        if restarts < 0:
            raise ConfigError(f"discovery.screen.restarts must be at least 0, got {restarts}")
        if full:
            if tensors_path is None:
                raise ConfigError("discovery.screen.preview_steps 'full' compares the decodes with the few-shot maps: "
                                  "it needs the dataset's tensors.h5")
            reference = read_tensor_file(tensors_path, split="fewshot").x
            if reference.shape[1:] != target.x.shape[1:]:
                raise InputError(tensors_path, f"few-shot maps {reference.shape[1:]} and target latents "
                                               f"{target.x.shape[1:]} differ in shape")
    result = discover(t, torch.from_numpy(ids.x), n_samples * oversample, seed=seed,
                      n_ref=int(cfg.get("n_ref", 10)), n_slerp=int(cfg.get("n_slerp", 20)),
                      tolerance=cfg.get("tolerance", 1.0), prior=prior,
                      max_candidates=int(cfg.get("max_candidates", 100_000)),
                      batch_candidates=int(cfg.get("batch_candidates", 1024)), target_names=target.names,
                      scheme=scheme, min_weight=cfg.get("min_weight"), max_per_source=cfg.get("max_per_source"),
                      max_per_pair=cfg.get("max_per_pair"))
    log.info("accepted %d latents from %d candidates (rate %.3g); windows %s", len(result.names),
             result.n_candidates, result.acceptance_rate,
             {c: tuple(round(v, 3) for v in result.targets.window(c)) for c in CRITERIA})
    latents, names, criteria = result.latents, list(result.names), result.criteria
    screened_out, screening = None, None
    if oversample > 1:
        from .screening import STATISTICS, screen

        select_by = cfg["screen"].get("select", "each")
        record = None
        if target.attrs.get("normalization"):
            from .physical import record_from_attrs

            record = record_from_attrs(target.attrs, latents_path)
        keep, screen_table, set_record = screen(model, options, int(target.attrs["t0"]), steps, latents, t,
                                                n_samples, names, target.names, select_by=select_by, record=record,
                                                seed=seed, reference_images=reference, restarts=restarts)
        keep_t = torch.from_numpy(keep)
        screened_out = (latents[~keep_t].numpy(), [n for n, k in zip(names, keep) if not k])
        latents, criteria = latents[keep_t], criteria[keep_t]
        names = [n for n, k in zip(names, keep) if k]
        scores = screen_table.loc[screen_table["set"] == "candidate", "score"].to_numpy()
        target_rows = screen_table[screen_table["set"] == "fewshot"]
        screening = {"oversample": oversample, "preview_steps": steps, "full_decodes": reference is not None,
                     "reference": "fewshot maps" if reference is not None else "fewshot previews",
                     "select": select_by, "restarts": restarts if select_by == "set" else None,
                     "set_selection": set_record, "statistics": list(STATISTICS),
                     "n_candidates": int(len(keep)), "n_kept": int(keep.sum()),
                     "target_mean": {c: float(target_rows[c].mean()) for c in STATISTICS},
                     "target_std": {c: float(target_rows[c].std(ddof=1)) for c in STATISTICS},
                     "kept_score_max": float(scores[keep].max()),
                     "screened_out_names": screened_out[1]}
    elif screening_path is not None:
        from .screening import TABLE_COLUMNS

        screen_table = pd.DataFrame(columns=list(TABLE_COLUMNS))  # no screening
    record = {"n_candidates": result.n_candidates, "acceptance_rate": result.acceptance_rate,
              "pass_rate": {c: result.pass_counts[c] / max(result.n_candidates, 1) for c in CRITERIA},
              "target_mean": result.targets.mean, "target_std": result.targets.std,
              "tolerance": result.targets.tolerance, "criteria": list(CRITERIA),
              **result.settings}
    if scheme == "prior":
        record.update({"prior_fit": fit_to, "prior_variance": cfg.get("prior_variance", "scalar")})
    record["screening"] = screening or {"oversample": 1}
    if screened_out is not None:
        record["sources"] = [src for src, k in zip(result.settings["sources"], keep) if k]  # the kept latents'
    attrs = {k: target.attrs.get(k) for k in ("t0", "n_steps", "eta", "model", "normalization", "dataset", "wcs")}
    attrs.update({"seed": seed, "source": str(latents_path), "id_source": str(id_latents_path),
                  "acceptance": record})
    x = latents.numpy()
    with TensorFileWriter(discovered_path, x.shape, "latents", attrs) as out:
        out.write(0, x, names)
        out.add_dataset("criteria", criteria.numpy())
        if screened_out is not None:
            out.add_dataset("screened_out", screened_out[0])
    table = latent_geometry(t, torch.from_numpy(ids.x))
    windows = pd.DataFrame([{"statistic": f"window_{c}", "set": "acceptance", "units": "deg" if "angle" in c
                             else "latent units", "mean": result.targets.mean[c], "std": result.targets.std[c],
                             "min": result.targets.window(c)[0], "max": result.targets.window(c)[1],
                             "n": len(t)} for c in CRITERIA])
    accepted = pd.DataFrame([{"statistic": c, "set": "discovered", "units": windows["units"][k],
                              "mean": float(criteria[:, k].mean()), "std": float(criteria[:, k].std()),
                              "min": float(criteria[:, k].min()), "max": float(criteria[:, k].max()),
                              "n": len(names)} for k, c in enumerate(CRITERIA)])
    write_csv_atomic(pd.concat([table, windows, accepted], ignore_index=True), geometry_path)
    if screening_path is not None:
        write_csv_atomic(screen_table, screening_path)
    return result
