"""A mixture of low-rank Gaussians (MoLRG) and its exact optimal denoiser.

Data as in Wang et al. (2024), "Diffusion models learn low-dimensional distributions via
subspace clustering": pick a class k of K uniformly, then x = U_k a with a ~ N(0, c^2 I_d) and
U_k an n x d matrix with orthonormal columns (random subspaces; n = C H W of small images;
c = ``std``, 1 in the paper, smaller to keep pixels in a model's [-1, 1]).

Under x_t = s x + sigma eps (DDPM: s = sqrt(a), sigma = sqrt(1 - a)), class k gives
x_t ~ N(0, s^2 c^2 U_k U_k^T + sigma^2 I), and the posterior mean, the optimal denoiser, is

    E[x | x_t] = sum_k w_k(x_t) s c^2 / (s^2 c^2 + sigma^2) U_k U_k^T x_t,
    w_k ∝ exp(s^2 c^2 |U_k^T x_t|^2 / (2 sigma^2 (s^2 c^2 + sigma^2))),

since (s^2 c^2 U U^T + sigma^2 I)^-1 = (I - s^2 c^2 / (s^2 c^2 + sigma^2) U U^T) / sigma^2 and
every class has the same determinant. At low noise the weights are one-hot, so the Jacobian of
the denoiser is s c^2 / (s^2 c^2 + sigma^2) U_k U_k^T: rank exactly d, the oracle the Jacobian
tool is checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class MoLRG:
    """K subspaces of dimension d in n = C H W dimensions: ``bases`` (K, n, d), orthonormal columns;
    coefficients of standard deviation ``std``."""

    bases: torch.Tensor
    shape: tuple
    std: float = 1.0

    @classmethod
    def random(cls, n_classes: int, dim: int, shape=(1, 8, 8), seed: int = 0, std: float = 1.0) -> MoLRG:
        n = int(np.prod(shape))
        if dim * n_classes > n:
            raise ValueError(f"{n_classes} subspaces of dimension {dim} do not fit in {n} dimensions")
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn((n, n_classes * dim), generator=g, dtype=torch.float64))
        return cls(q.T.reshape(n_classes, dim, n).transpose(1, 2).contiguous(), tuple(shape), float(std))

    def sample(self, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` images (n, C, H, W) and their classes."""
        g = torch.Generator().manual_seed(seed)
        k = torch.randint(self.bases.shape[0], (n,), generator=g)
        coeff = self.std * torch.randn((n, self.bases.shape[2]), generator=g, dtype=torch.float64)
        x = torch.einsum("bnd,bd->bn", self.bases[k], coeff)
        return x.reshape(n, *self.shape), k

    def denoise(self, x_t: torch.Tensor, alpha_bar: float) -> torch.Tensor:
        """The exact posterior mean E[x | x_t] at noise level ``alpha_bar`` (module docstring)."""
        s2, sigma2, c2 = float(alpha_bar), 1.0 - float(alpha_bar), self.std**2
        flat = x_t.reshape(x_t.shape[0], -1).to(self.bases.dtype)
        proj = torch.einsum("knd,bn->bkd", self.bases, flat)  # U_k^T x_t
        logits = s2 * c2 / (2 * sigma2 * (s2 * c2 + sigma2)) * (proj**2).sum(-1)
        w = torch.softmax(logits, dim=1)
        recon = torch.einsum("knd,bkd->bkn", self.bases, proj)  # U_k U_k^T x_t
        out = s2**0.5 * c2 / (s2 * c2 + sigma2) * torch.einsum("bk,bkn->bn", w, recon)
        return out.reshape(x_t.shape).to(x_t.dtype)


class MLPDenoiser(torch.nn.Module):
    """A small time-conditioned MLP for MoLRG images: ``net(x_t, t)`` -> (B, C, H, W).

    Four linear layers of width ``hidden`` with SiLU, on the flattened image and a sinusoidal
    embedding of t (Vaswani et al. 2017, as DDPM's UNet). Trained with this project's
    :func:`~discoverydiff.training.train_eps_model` (``prediction_type="sample"``, no flips), it
    is the learned denoiser whose Jacobian is compared with :meth:`MoLRG.denoise`'s.
    An MLP rather than a UNet: random subspaces have no translation structure for convolutions
    to use, and at 8x8 it trains in seconds on a CPU.
    """

    def __init__(self, shape=(1, 8, 8), hidden: int = 256, embedding: int = 64):
        super().__init__()
        n = int(np.prod(shape))
        self.embedding = int(embedding)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(n + self.embedding, hidden), torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.SiLU(),
            torch.nn.Linear(hidden, n))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        half = self.embedding // 2
        freq = torch.exp(-np.log(10000.0) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
        angle = t.to(torch.float32)[:, None] * freq[None]
        emb = torch.cat([angle.sin(), angle.cos()], dim=1).to(x.dtype)
        return self.net(torch.cat([x.reshape(len(x), -1), emb], dim=1)).reshape(x.shape)
