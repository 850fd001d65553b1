"""Geometric sampling of new target-domain latents (docs/method.md, section 4).

New latents are proposed by one of the schemes of :mod:`.candidates` and accepted when their
geometry matches the target cluster's on the three criteria of :mod:`.acceptance`. Per-target and
per-pair quotas spread the accepted set over the targets.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import torch

from ..errors import ConfigError, DiscoveryDiffError
from .acceptance import (
    CRITERIA,
    DEFAULT_TOLERANCE,
    AcceptanceTargets,
    _advice,
    _criteria_from_dots,
    measure_targets,
    passes,
)
from .candidates import SCHEMES, GaussianPrior, PairCandidates, SlerpCandidates
from .geometry import References

log = logging.getLogger(__name__)


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


def discover(target, id_latents, n_accept: int, seed: int = 0, n_ref: int = 10,
             n_slerp: int = 20, tolerance: dict | float = DEFAULT_TOLERANCE, prior: GaussianPrior | None = None,
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
