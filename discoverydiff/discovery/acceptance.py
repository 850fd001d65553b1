"""The three geometric acceptance criteria, their windows measured on the inverted targets, and advice
when too few candidates pass.

1. ``dist_to_id``: mean Euclidean distance to ID latents;
2. ``angle_origin``: mean angle at the origin to target latents (degrees);
3. ``angle_pairs``: mean angle at the candidate between pairs of target latents (degrees);

each averaged over ``n_ref`` random reference latents. The public code compares them with
constants (611.4, 88 deg, 60 deg) that belong to one model/domain pair at 3x256x256. Here every
target value and its spread are *measured* on this run's inverted targets (each target latent
scored against the other targets, exactly as a candidate is), and a candidate passes a criterion
when it lies within ``tolerance`` spreads of the measured mean.

The window should hold the domain's own members: :attr:`AcceptanceTargets.target_pass_share` is the
share of the targets whose own values pass all three windows. Measured on the four evaluation
datasets (12-16 targets each), at 1 spread only 31-56% of the targets passed their own test, so
the accepted mixtures came from a corner of the domain; at 2 spreads (the default) 81-100% did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .geometry import References, _flat, angles_deg

CRITERIA = ("dist_to_id", "angle_origin", "angle_pairs")
#: Default window half-width, in spreads of the targets' own values (``discovery.tolerance``).
DEFAULT_TOLERANCE = 2.0


@dataclass
class AcceptanceTargets:
    """Measured mean and spread of each criterion on the inverted targets."""

    mean: dict
    std: dict
    tolerance: dict
    #: share of the targets whose own criteria (each scored against the other targets) pass every window
    target_pass_share: float = float("nan")

    def window(self, name: str) -> tuple[float, float]:
        half = self.tolerance[name] * self.std[name]
        return self.mean[name] - half, self.mean[name] + half


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
    """Mean and spread of the criteria over the inverted targets, each scored like a candidate, and the share
    of the targets that pass their own windows."""
    refs = References.of(target, id_latents)
    n_t = refs.t.shape[0]
    values = _criteria_from_dots(refs.tt, refs.ti, refs.t_sq, refs, n_ref, generator, exclude_self=torch.arange(n_t))
    tol = {c: float(tolerance) for c in CRITERIA} if not isinstance(tolerance, dict) else {
        c: float(tolerance.get(c, DEFAULT_TOLERANCE)) for c in CRITERIA}
    targets = AcceptanceTargets(
        mean={c: float(values[:, k].mean()) for k, c in enumerate(CRITERIA)},
        std={c: float(values[:, k].std()) for k, c in enumerate(CRITERIA)},
        tolerance=tol,
    )
    targets.target_pass_share = float(passes(values, targets).all(dim=1).double().mean())
    return targets


def passes(values: torch.Tensor, targets: AcceptanceTargets) -> torch.Tensor:
    """(N, 3) bool: each criterion inside its window."""
    lo = torch.tensor([targets.window(c)[0] for c in CRITERIA], dtype=values.dtype)
    hi = torch.tensor([targets.window(c)[1] for c in CRITERIA], dtype=values.dtype)
    return (values >= lo) & (values <= hi)


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
