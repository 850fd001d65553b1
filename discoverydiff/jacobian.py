"""How many directions does a denoiser use? The singular values of its Jacobian.

For a denoiser D(x_t) (the clean-image estimate x0 as a function of the noisy input at one
noise level), the Jacobian J = dD/dx_t at a point says which input directions move the
output. A model that has learned a low-dimensional domain has a low-rank J there (Wang et al.
2024, "Diffusion models learn low-dimensional distributions via subspace clustering"): for data
on d-dimensional subspaces, J at low noise is close to the projector onto the local subspace.

J is never formed: :func:`jacobian_singular_values` runs a randomized SVD (Halko, Martinsson &
Tropp 2011, algorithm 4.4 with power iterations) on Jacobian-vector products
(``torch.func.jvp``) and vector-Jacobian products (``torch.func.vjp``), so the cost is
``2 (q + 1)`` batched products of ``k + p`` vectors, and 3x256x256 inputs fit on a GPU.
:func:`numerical_rank` says how many singular values matter.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

RANK_ENERGY = 0.99


def x0_denoiser(model, t: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The clean-image estimate of an eps-model at timestep t: x0 = (x_t - sqrt(1 - a) eps) / sqrt(a)."""
    a = float(model.alpha_bar[t])
    norms = [m for m in model.modules() if isinstance(m, torch.nn.GroupNorm)]

    def contiguous(_module, inputs):
        return tuple(i.contiguous() for i in inputs)

    def denoise(x: torch.Tensor) -> torch.Tensor:
        steps = torch.full((x.shape[0],), int(t), dtype=torch.long, device=x.device)
        # forward-mode AD of group_norm fails on the non-contiguous activations diffusers'
        # attention blocks hand on (torch 2.x: "view size is not compatible"): copy them
        handles = [m.register_forward_pre_hook(contiguous) for m in norms]
        try:
            return (x - (1.0 - a) ** 0.5 * model(x, steps)) / a**0.5
        finally:
            for handle in handles:
                handle.remove()

    return denoise


def jacobian_singular_values(denoise: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, k: int,
                             oversample: int = 10, power_iterations: int = 2, seed: int = 0,
                             batch: int = 1) -> torch.Tensor:
    """The top ``k`` singular values of the Jacobian of ``denoise`` at one point ``x`` (C, H, W).

    ``denoise`` maps a batch (B, C, H, W) to a batch of the same shape. Randomized SVD: a
    Gaussian test matrix of ``k + oversample`` columns, ``power_iterations`` rounds of
    J (J^T ...) with QR re-orthonormalisation, then the exact SVD of the small projected
    matrix. Exact (to rounding) when the Jacobian's rank is at most ``k + oversample``.

    ``batch`` products run in one pass of ``denoise`` on ``batch`` copies of ``x``, each with its
    own tangent (or cotangent). That is exact only for a denoiser that treats every batch
    element on its own (UNets in eval mode: GroupNorm, attention within an image), and it
    trades memory (the pass's activations for ``batch`` images) for speed.
    """
    from torch.func import jvp, vjp
    from torch.nn.attention import SDPBackend, sdpa_kernel

    x = x.detach()
    shape, n = x.shape, x.numel()
    m = min(k + oversample, n)
    g = torch.Generator(device="cpu").manual_seed(seed)
    omega = torch.randn((m, *shape), generator=g, dtype=x.dtype).to(x.device)

    batch = max(1, min(int(batch), m))
    copies = x[None].expand(batch, *shape).contiguous()

    def jmat(vectors):  # J V for V (m, C, H, W)
        # forward-mode AD through attention needs the composite (math) kernel: the fused CPU
        # and flash kernels have no forward derivative (torch 2.x raises NotImplementedError)
        out = []
        with sdpa_kernel(SDPBackend.MATH):
            for chunk in vectors.split(batch):
                out.append(jvp(denoise, (copies[: len(chunk)],), (chunk,))[1])
        return torch.cat(out)

    _, pullback = vjp(denoise, copies)

    def jtmat(vectors):  # J^T U
        out = []
        for chunk in vectors.split(batch):
            if len(chunk) < batch:  # the pullback is for a full batch: pad with zero cotangents
                chunk = torch.cat([chunk, chunk.new_zeros((batch - len(chunk), *shape))])
            out.append(pullback(chunk)[0])
        return torch.cat(out)[: len(vectors)]

    def orthonormal(vectors):
        q, _ = torch.linalg.qr(vectors.reshape(vectors.shape[0], -1).T)
        return q.T.reshape(-1, *shape).contiguous()

    q = orthonormal(jmat(omega))
    for _ in range(power_iterations):
        q = orthonormal(jmat(orthonormal(jtmat(q))))
    b = jtmat(q).reshape(q.shape[0], -1)  # rows: (J^T q_i)^T = q_i^T J, so B = Q^T J
    return torch.linalg.svdvals(b.detach())[:k]


def numerical_rank(singular_values, energy: float = RANK_ENERGY) -> int:
    """The smallest r whose top r singular values hold ``energy`` of the squared spectrum."""
    s = np.sort(np.asarray(singular_values, dtype=np.float64))[::-1]
    total = float(np.sum(s**2))
    if total == 0:
        return 0
    return int(np.searchsorted(np.cumsum(s**2) / total, energy - 1e-12) + 1)
