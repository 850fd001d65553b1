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

import math
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
                             batch: int = 1, return_total: bool = False):
    """The top ``k`` singular values of the Jacobian of ``denoise`` at one point ``x`` (C, H, W).

    ``denoise`` maps a batch (B, C, H, W) to a batch of the same shape. Randomized SVD: a
    Gaussian test matrix of ``k + oversample`` columns, ``power_iterations`` rounds of
    J (J^T ...) with QR re-orthonormalisation, then the exact SVD of the small projected
    matrix. Exact (to rounding) when the Jacobian's rank is at most ``k + oversample``.

    ``batch`` products run in one pass of ``denoise`` on ``batch`` copies of ``x``, each with its
    own tangent (or cotangent). That is exact only for a denoiser that treats every batch
    element on its own (UNets in eval mode: GroupNorm, attention within an image), and it
    trades memory (the pass's activations for ``batch`` images) for speed.

    With ``return_total`` also an unbiased estimate of the squared Frobenius norm of J (the
    whole squared spectrum, the denominator of :func:`spectrum_rank`): ||Q^T J||_F^2, exact
    from the projected matrix, plus a Hutchinson estimate of the rest, mean ||(I - Q Q^T) J g||^2
    over ``max(oversample, 4)`` fresh Gaussian vectors g (that many more products). Its error
    scales with the part of the spectrum outside Q, so a low-rank Jacobian is judged exactly.
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
    all_values = torch.linalg.svdvals(b.detach())
    if not return_total:
        return all_values[:k]
    probes = max(oversample, 4)
    g_probe = torch.randn((probes, *shape), generator=g, dtype=x.dtype).to(x.device)
    r = jmat(g_probe).reshape(probes, -1).double()
    basis = q.reshape(q.shape[0], -1).double()
    tail = (r - (r @ basis.T) @ basis).pow(2).sum() / probes
    return all_values[:k], float(all_values.double().pow(2).sum() + tail)


def numerical_rank(singular_values, energy: float = RANK_ENERGY) -> int:
    """The smallest r whose top r singular values hold ``energy`` of the squared spectrum (the
    values given are the whole spectrum: :func:`spectrum_rank` with their own total)."""
    s = np.asarray(singular_values, dtype=np.float64)
    return spectrum_rank(s, float(np.sum(s**2)), energy)[0]


def spectrum_rank(singular_values, total: float, energy: float = RANK_ENERGY) -> tuple[int, float, bool]:
    """(rank, captured share, saturated) of a top-k spectrum against the whole one.

    ``total`` is the squared Frobenius norm (the sum of all squared singular values, e.g. the
    estimate of :func:`jacobian_singular_values`). The rank is the smallest r whose top r
    squared singular values hold ``energy`` of ``total``; when the k given do not (the share
    they hold, ``captured``, is below ``energy``), the rank is reported as k with
    ``saturated`` True: the true rank is larger, compute more singular values.
    """
    s = np.sort(np.asarray(singular_values, dtype=np.float64))[::-1]
    if total <= 0 or not np.any(s):
        return 0, 1.0, False
    cumulative = np.cumsum(s**2) / float(total)
    captured = float(cumulative[-1])
    if captured < energy:
        return len(s), captured, True
    return int(np.searchsorted(cumulative, energy - 1e-12) + 1), captured, False


#: The point sets of rule ``jacobian``: few-shot targets and in-domain points (base-model samples).
JACOBIAN_SETS = ("fewshot", "in_domain")


def _product_probe(model, shape, device) -> Callable[[int], None]:
    """``probe(b)``: what :func:`jacobian_singular_values` holds at once with ``batch`` b: the
    pullback of b copies (their saved activations) while a jvp of b tangents runs, then one pullback."""
    from torch.func import jvp, vjp
    from torch.nn.attention import SDPBackend, sdpa_kernel

    denoise = x0_denoiser(model, len(model.alpha_bar) // 2)

    def probe(b: int) -> None:
        copies = torch.zeros((b, *shape), device=device)
        _, pullback = vjp(denoise, copies)
        with sdpa_kernel(SDPBackend.MATH):
            jvp(denoise, (copies,), (torch.ones_like(copies),))
        pullback(torch.ones_like(copies))

    return probe


def plan_products(model, shape, batch: int, device, memory_limit_mb=None) -> int:
    """Jacobian products per pass that fit the job's memory (:func:`discoverydiff.memory.plan_batch`)."""
    from .memory import plan_batch

    n_params = sum(p.numel() for p in model.parameters())
    return plan_batch(f"Jacobian product at a {'x'.join(map(str, shape))} point", _product_probe(model, shape, device),
                      batch, device, key=(tuple(shape), getattr(model, "name", type(model).__name__), n_params),
                      config_limit=memory_limit_mb, min_item_mb=6 * 4 * math.prod(shape) / 2**20)


def jacobian_table(model, point_sets: dict, timesteps, k: int = 32, oversample: int = 10,
                   power_iterations: int = 2, batch: int = 8, energy: float = RANK_ENERGY, seed: int = 0,
                   device: str | torch.device = "cpu", memory_limit_mb: float | None = None):
    """Jacobian spectra of ``model``'s x0-denoiser at each point of each set and timestep, one row each.

    ``point_sets`` maps a set name to (clean images (N, C, H, W) in the model's range, names).
    Point i is noised to each timestep t as x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps, with eps
    drawn from (``seed``, i, t), so every set sees the same noise. Columns: set, name, t,
    rank, captured, saturated, frobenius_sq, s_1 .. s_k (see :func:`spectrum_rank`).

    ``batch`` is the most products per pass: fewer run where memory is short
    (:func:`plan_products`), and an out-of-memory error halves them and redoes the point.
    """
    import pandas as pd

    from . import memory

    device = torch.device(device)
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    planned = {}  # image shape -> products per pass
    rows = []
    for set_name, (images, names) in point_sets.items():
        for i, (image, name) in enumerate(zip(images, names, strict=True)):
            x0 = torch.as_tensor(np.asarray(image, dtype=np.float32))
            shape = tuple(x0.shape)
            if shape not in planned:
                planned[shape] = plan_products(model, shape, max(1, min(int(batch), k + oversample)), device,
                                               memory_limit_mb)
            for t in timesteps:
                a = float(model.alpha_bar[int(t)])
                g = torch.Generator().manual_seed(int(seed) * 1_000_003 + 1009 * i + int(t))
                x_t = a**0.5 * x0 + (1 - a) ** 0.5 * torch.randn(x0.shape, generator=g)
                while True:
                    try:
                        values, total = jacobian_singular_values(
                            x0_denoiser(model, int(t)), x_t.to(device), k, oversample=oversample,
                            power_iterations=power_iterations, seed=int(seed) + i, batch=planned[shape],
                            return_total=True)
                        break
                    except Exception as exc:  # out of memory: fewer products per pass, the same point again
                        if not memory.is_out_of_memory(exc):
                            raise
                        memory.free_cached(device)
                        if planned[shape] <= 1:
                            raise memory.MemoryBudgetError(
                                f"{memory._job_name()}: one Jacobian product at a {shape} point ran out of "
                                f"memory on {device} ({exc})") from None
                        planned[shape] = max(1, planned[shape] // 2)
                values = values.double().cpu().numpy()
                rank, captured, saturated = spectrum_rank(values, total, energy)
                rows.append({"set": set_name, "name": name, "t": int(t), "rank": rank, "captured": captured,
                             "saturated": saturated, "frobenius_sq": total,
                             **{f"s_{j + 1}": float(v) for j, v in enumerate(values)}})
    return pd.DataFrame(rows)
