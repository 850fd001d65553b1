"""Latent geometry and geometric sampling of new target-domain latents (docs/method.md, sections 3-4).

Inverted latents of an unseen domain form a concentrated, Gaussian-like cluster apart
from the in-domain (ID) latents of the base model. New latents are discovered by
spherical interpolation (slerp) between an inverted target latent and a draw from a
Gaussian fitted to the target latents, and accepted when their geometry matches the
target cluster's on three criteria, each averaged over ``n_ref`` random reference
latents:

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

from .errors import ConfigError, DiscoveryDiffError

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
    pairs of target latents. ``exclude_self[k]`` is the index of point k among the targets
    (when the points are the targets themselves), which it must not draw. ``target`` may be
    a :class:`References` (then ``id_latents`` is ignored).
    """
    refs = References.of(target, id_latents)
    p = _flat(points)
    return _criteria_from_dots(p @ refs.t.T, p @ refs.i.T, (p * p).sum(1), refs, n_ref, generator, exclude_self)


def _criteria_from_dots(pt: torch.Tensor, pi: torch.Tensor, pp: torch.Tensor, refs: References, n_ref: int,
                        generator: torch.Generator, exclude_self: torch.Tensor | None = None) -> torch.Tensor:
    """The criteria of N points from their dot products with the targets (N, N_t) and IDs (N, N_id)
    and their squared norms (N,): no pass over the D dimensions."""
    n, n_t, n_i = pt.shape[0], pt.shape[1], pi.shape[1]
    avail = n_t - (1 if exclude_self is not None else 0)
    if avail < 2:
        raise ConfigError(f"need at least 2 reference target latents, have {avail}")
    k_ref = min(n_ref, avail)

    def draw_targets(count):
        # random distinct target indices per point, skipping the point itself
        scores = torch.rand((n, n_t), generator=generator, dtype=torch.float64)
        if exclude_self is not None:
            scores[torch.arange(n), exclude_self] = 2.0
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


def discover(target, id_latents, n_accept: int, seed: int = 0, n_ref: int = 10,
             n_slerp: int = 20, tolerance: dict | float = 1.0, prior: GaussianPrior | None = None,
             max_candidates: int = 100_000, batch_candidates: int = 1024, target_names=None) -> DiscoveryResult:
    """Geometric sampling: slerp candidates, accepted when all three criteria fit the targets.

    Parameters
    ----------
    target : (N_t, C, H, W) inverted target latents.
    id_latents : (N_id, C, H, W) inverted base-model samples.
    n_accept : latents to discover.
    n_slerp : interpolation points per (target, prior draw) pair, at k / (n_slerp + 1),
        k = 1 .. n_slerp (paper: 20 points at k/21).
    tolerance : spreads (std of the criterion over the targets) allowed per criterion.
    prior : defaults to the Gaussian fitted to the targets with a scalar variance.
    max_candidates : the budget; when it is spent with fewer than ``n_accept`` accepted,
        :class:`TooFewAccepted` explains which criterion failed most and suggests a tolerance.
    """
    shape = tuple(torch.as_tensor(target).shape[1:])
    refs = References.build(target, id_latents)
    t = refs.t
    names = list(target_names) if target_names is not None else [f"target{k}" for k in range(len(t))]
    g = torch.Generator().manual_seed(int(seed))
    targets = measure_targets(refs, None, n_ref, tolerance, g)
    prior = prior or GaussianPrior.fit(t)
    weights = torch.arange(1, n_slerp + 1, dtype=torch.float64) / (n_slerp + 1)
    accepted, acc_names, acc_values = [], [], []
    tried, pass_counts = 0, dict.fromkeys(CRITERIA, 0)
    deviations = []
    while len(acc_names) < n_accept and tried < max_candidates:
        n_pairs = max(1, min(batch_candidates, max_candidates - tried) // n_slerp)
        src = torch.randint(len(t), (n_pairs,), generator=g)
        draws = prior.sample(n_pairs, g)
        cand = SlerpCandidates.score(refs, src, draws, weights)
        tried += len(cand.pair)
        values = _criteria_from_dots(cand.pt, cand.pi, cand.pp, refs, n_ref, g)
        ok = passes(values, targets)
        for k, c in enumerate(CRITERIA):
            pass_counts[c] += int(ok[:, k].sum())
        std = torch.tensor([max(targets.std[c], 1e-300) for c in CRITERIA], dtype=values.dtype)
        mean = torch.tensor([targets.mean[c] for c in CRITERIA], dtype=values.dtype)
        deviations.append(((values - mean).abs() / std).float())
        keep = ok.all(1).nonzero().flatten()
        for j in keep.tolist():
            if len(acc_names) >= n_accept:
                break
            accepted.append(cand.latent(j))
            acc_values.append(values[j])
            source = names[int(src[cand.pair[j]])]
            acc_names.append(f"discovered_{len(acc_names):05d}<-{source}@w={float(cand.w[j]):.3f}")
    if len(acc_names) < n_accept:
        dev = torch.cat(deviations)
        worst = min(CRITERIA, key=lambda c: pass_counts[c])
        k = CRITERIA.index(worst)
        # the tolerance at which enough candidates would have passed the worst criterion alone
        need = float(torch.quantile(dev[:, k], min(1.0, n_accept / max(tried, 1) * 2)))
        raise TooFewAccepted(
            f"discovery accepted {len(acc_names)} of {n_accept} latents from {tried} candidates "
            f"(acceptance rate {len(acc_names) / max(tried, 1):.2e}); pass rates per criterion: "
            + ", ".join(f"{c} {pass_counts[c] / max(tried, 1):.1%}" for c in CRITERIA)
            + f". '{worst}' failed most; discovery.tolerance.{worst} = {targets.tolerance[worst]} spreads, "
            f"try about {need:.2f}, or raise discovery.max_candidates ({max_candidates})")
    return DiscoveryResult(torch.stack(accepted).reshape(-1, *shape).float(), acc_names,
                           torch.stack(acc_values), targets, tried, pass_counts)


# ----------------------------------------------------------------------------- files
def discover_from_files(latents_path, id_latents_path, discovered_path, geometry_path, cfg: dict,
                        seed: int = 0) -> DiscoveryResult:
    """Run discovery on tensor files and write the accepted latents and the geometry table.

    Parameters
    ----------
    latents_path : inverted few-shot targets (rule ``invert``).
    id_latents_path : inverted base-model samples (rule ``sample_base``).
    discovered_path : output tensor file of accepted latents; datasets ``criteria``
        (N, 3) hold each accepted latent's criterion values, attrs the acceptance record.
    geometry_path : output CSV of :func:`latent_geometry` plus the acceptance windows.
    cfg : the config's ``discovery`` section (n_samples, n_ref, n_slerp, tolerance,
        prior_fit, prior_variance, max_candidates, batch_candidates).
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
    prior = GaussianPrior.fit(target.x if fit_to == "target" else ids.x, cfg.get("prior_variance", "scalar"), fit_to)
    t = torch.from_numpy(target.x)
    result = discover(t, torch.from_numpy(ids.x), int(cfg.get("n_samples", 32)), seed=seed,
                      n_ref=int(cfg.get("n_ref", 10)), n_slerp=int(cfg.get("n_slerp", 20)),
                      tolerance=cfg.get("tolerance", 1.0), prior=prior,
                      max_candidates=int(cfg.get("max_candidates", 100_000)),
                      batch_candidates=int(cfg.get("batch_candidates", 1024)), target_names=target.names)
    log.info("accepted %d latents from %d candidates (rate %.3g); windows %s", len(result.names),
             result.n_candidates, result.acceptance_rate,
             {c: tuple(round(v, 3) for v in result.targets.window(c)) for c in CRITERIA})
    record = {"n_candidates": result.n_candidates, "acceptance_rate": result.acceptance_rate,
              "pass_rate": {c: result.pass_counts[c] / max(result.n_candidates, 1) for c in CRITERIA},
              "target_mean": result.targets.mean, "target_std": result.targets.std,
              "tolerance": result.targets.tolerance, "criteria": list(CRITERIA), "prior_fit": fit_to,
              "prior_variance": cfg.get("prior_variance", "scalar")}
    attrs = {k: target.attrs.get(k) for k in ("t0", "n_steps", "eta", "model", "normalization", "dataset", "wcs")}
    attrs.update({"seed": seed, "source": str(latents_path), "id_source": str(id_latents_path),
                  "acceptance": record})
    x = result.latents.numpy()
    with TensorFileWriter(discovered_path, x.shape, "latents", attrs) as out:
        out.write(0, x, result.names)
        out.add_dataset("criteria", result.criteria.numpy())
    table = latent_geometry(t, torch.from_numpy(ids.x))
    windows = pd.DataFrame([{"statistic": f"window_{c}", "set": "acceptance", "units": "deg" if "angle" in c
                             else "latent units", "mean": result.targets.mean[c], "std": result.targets.std[c],
                             "min": result.targets.window(c)[0], "max": result.targets.window(c)[1],
                             "n": len(t)} for c in CRITERIA])
    accepted = pd.DataFrame([{"statistic": c, "set": "discovered", "units": windows["units"][k],
                              "mean": float(result.criteria[:, k].mean()), "std": float(result.criteria[:, k].std()),
                              "min": float(result.criteria[:, k].min()), "max": float(result.criteria[:, k].max()),
                              "n": len(result.names)} for k, c in enumerate(CRITERIA)])
    write_csv_atomic(pd.concat([table, windows, accepted], ignore_index=True), geometry_path)
    return result
