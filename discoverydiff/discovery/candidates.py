"""Candidate latents of discovery's two proposal schemes, known by their dot products with the references.

- ``pairs`` (default, :class:`PairCandidates`): between two distinct few-shot targets, at weights
  in [min_weight, 1 - min_weight], keeping the targets' share of their common direction. Every
  candidate is a mixture of two real members, never mostly one of them.
- ``prior`` (:class:`SlerpCandidates` with a :class:`GaussianPrior`): the public code's slerp from
  one target towards a draw of a Gaussian fitted to the targets. Measured on the demo, the fitted
  mean contains each target (m . t_j exceeds the targets' mutual dot products about threefold at
  16 targets), draws sit at smaller angles to the targets than the targets to each other, and only
  weights of a few percent pass: the accepted latents are near-copies of a handful of targets.

A candidate is a linear combination of latents whose Gram matrices are known, so its dot products
with every reference follow without forming it; it is formed in D dimensions only when accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .geometry import References, _flat, slerp_coefficients

#: The proposal schemes (``discovery.scheme``).
SCHEMES = ("pairs", "prior")


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

