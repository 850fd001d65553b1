"""DDPM noise schedules and the DDIM sampler/inverter of the method.

Conventions (docs/method.md, section 2; Song et al. 2021, DDIM):

- ``alpha_bar[t] = prod_{s <= t} (1 - beta[s])`` for ``t = 0 .. T-1``.
- The timestep sequence of inversion and generation is written once, here::

      seq = [int(s) for s in numpy.linspace(0, 1, n_steps) * t0]

  e.g. t0 = 900, n_steps = 80 gives 0, 11, 22, 34, ..., 888, 900.
- **Inversion** (eta = 0) walks ``seq[k-1] -> seq[k]`` for k = 1 .. n-1, evaluating eps at
  the less noisy step (the first call is at t = 0): n - 1 model evaluations.
- **Generation** walks ``reversed(seq)`` paired with ``reversed([-1] + seq[:-1])``; the last
  step goes from t = 0 to alpha_bar = 1 (the clean image): n model evaluations.
- One DDIM step from ``t`` to ``t_next`` with eps = eps(x_t, t)::

      x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)
      x_next = sqrt(a_next) x0_hat + c1 noise + sqrt(1 - a_next - c1^2) eps,
      c1 = eta sqrt((1 - a_t / a_next) (1 - a_next) / (1 - a_t))

  which for eta = 0 is the deterministic probability-flow (DDIM) update in both directions.

All schedule arithmetic is float64 on the host and the per-step coefficients are Python
floats, so the loop never indexes a device tensor (no GPU->CPU syncs) and CPU runs are
bitwise reproducible.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .errors import ConfigError

log = logging.getLogger(__name__)

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------- schedules
def linear_betas(num_train_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """DDPM linear schedule (Ho et al. 2020): betas evenly spaced from beta_start to beta_end."""
    return np.linspace(beta_start, beta_end, num_train_timesteps, dtype=np.float64)


def cosine_betas(num_train_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Cosine schedule (Nichol & Dhariwal 2021): alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) pi/2)."""
    def f(t):
        return math.cos((t / num_train_timesteps + s) / (1 + s) * math.pi / 2) ** 2

    return np.array([min(1 - f(i + 1) / f(i), max_beta) for i in range(num_train_timesteps)], dtype=np.float64)


def make_betas(schedule: str = "linear", num_train_timesteps: int = 1000, beta_start: float = 1e-4,
               beta_end: float = 0.02) -> np.ndarray:
    """Betas of a named schedule (``linear`` or ``cosine``)."""
    if schedule == "linear":
        return linear_betas(num_train_timesteps, beta_start, beta_end)
    if schedule in ("cosine", "squaredcos_cap_v2"):
        return cosine_betas(num_train_timesteps)
    raise ConfigError(f"beta schedule must be 'linear' or 'cosine', got {schedule!r}")


def alphas_cumprod(betas: np.ndarray) -> np.ndarray:
    """alpha_bar[t] = prod_{s<=t} (1 - beta[s]), float64."""
    return np.cumprod(1.0 - np.asarray(betas, dtype=np.float64))


def timestep_sequence(t0: int, n_steps: int) -> list[int]:
    """The paper's sequence ``[int(s) for s in linspace(0, 1, n_steps) * t0]``."""
    if n_steps < 2:
        raise ConfigError(f"diffusion.n_inv_step must be at least 2, got {n_steps}")
    if t0 < 1:
        raise ConfigError(f"diffusion.t0 must be at least 1, got {t0}")
    return [int(s) for s in np.linspace(0, 1, n_steps) * t0]


@dataclass(frozen=True)
class DDIMSettings:
    """Settings of one inversion or generation run."""

    t0: int = 900
    n_steps: int = 80
    eta: float = 0.0

    def sequence(self) -> list[int]:
        return timestep_sequence(self.t0, self.n_steps)


def ddim_step(x: torch.Tensor, eps: torch.Tensor, a_t: float, a_next: float, eta: float = 0.0,
              noise: torch.Tensor | None = None) -> torch.Tensor:
    """One DDIM update from noise level ``a_t`` to ``a_next`` (either direction when eta = 0)."""
    x0_hat = (x - math.sqrt(1.0 - a_t) * eps) / math.sqrt(a_t)
    c1 = 0.0
    if eta > 0:
        c1 = eta * math.sqrt(max((1 - a_t / a_next) * (1 - a_next) / (1 - a_t), 0.0))
    c2 = math.sqrt(max(1.0 - a_next - c1**2, 0.0))
    out = math.sqrt(a_next) * x0_hat + c2 * eps
    if c1 > 0:
        out = out + c1 * noise
    return out


# ----------------------------------------------------------------------------- loops
def _timesteps(t: int, batch: int, device) -> torch.Tensor:
    return torch.full((batch,), t, dtype=torch.long, device=device)


@torch.no_grad()
def ddim_invert(eps_fn: EpsFn, x0: torch.Tensor, alpha_bar: np.ndarray, settings: DDIMSettings) -> torch.Tensor:
    """Deterministic DDIM inversion of clean images x0 (B, C, H, W) in [-1, 1] to x_{t0}."""
    seq = settings.sequence()
    x = x0
    for t, t_next in zip(seq[:-1], seq[1:]):
        eps = eps_fn(x, _timesteps(t, x.shape[0], x.device)).to(x.dtype)
        x = ddim_step(x, eps, float(alpha_bar[t]), float(alpha_bar[t_next]))
    return x


@torch.no_grad()
def ddim_generate(eps_fn: EpsFn, x_t0: torch.Tensor, alpha_bar: np.ndarray, settings: DDIMSettings,
                  generator: torch.Generator | Sequence[torch.Generator] | None = None) -> torch.Tensor:
    """DDIM generation from latents x_{t0} (B, C, H, W) down to clean images (alpha_bar = 1).

    For eta > 0 the fresh noise of each step comes from ``generator``: one CPU generator for
    the batch, or one per image (then an image's noise does not depend on its batch).
    """
    seq = settings.sequence()
    seq_next = [-1] + seq[:-1]
    x = x_t0
    for t, t_next in zip(reversed(seq), reversed(seq_next)):
        eps = eps_fn(x, _timesteps(t, x.shape[0], x.device)).to(x.dtype)
        a_next = float(alpha_bar[t_next]) if t_next >= 0 else 1.0
        noise = None
        if settings.eta > 0 and t_next >= 0:
            if isinstance(generator, Sequence):
                noise = torch.stack([torch.randn(x.shape[1:], generator=g, dtype=torch.float32) for g in generator])
            else:
                noise = torch.randn(x.shape, generator=generator, device="cpu", dtype=torch.float32)
            noise = noise.to(x)
        x = ddim_step(x, eps, float(alpha_bar[t]), a_next, settings.eta, noise)
    return x


# ----------------------------------------------------------------------------- execution
def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU.

    ``auto`` and ``cuda`` on a machine with several visible GPUs give this job's own device,
    ``cuda:i``, claimed once per process (:func:`discoverydiff.devices.claimed_cuda_index`), so
    the model jobs of a local run spread over the devices.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but torch sees no CUDA device; use device: auto")
    if device == "cuda":
        from .devices import claimed_cuda_index

        return torch.device("cuda", claimed_cuda_index())
    return torch.device(device)


_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_context(device: torch.device, precision: str):
    """bf16/fp16 autocast on CUDA; fp32 everywhere else (CPU autocast would only slow the UNet)."""
    if precision not in _DTYPES:
        raise ConfigError(f"precision must be one of {sorted(_DTYPES)}, got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type != "cuda":
        log.warning("precision %s needs CUDA; running fp32 on %s", precision, device)
        return contextlib.nullcontext()
    if precision == "bf16" and not cuda_bf16_supported(device):
        log.warning("precision bf16 needs a GPU of compute capability 8.0 or newer (A100, H100, L4, RTX 30xx); "
                    "%s emulates it slowly, so this job runs fp32 (precision: fp16 uses its tensor cores)",
                    torch.cuda.get_device_name(device))
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=_DTYPES[precision])


def cuda_bf16_supported(device) -> bool:
    """Whether ``device``'s hardware computes in bf16 (not torch's emulation on older cards)."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch without the keyword: compute capability 8.0 is where bf16 starts
        return torch.cuda.get_device_capability(device) >= (8, 0)


def prepare_eps_fn(model: torch.nn.Module, device: torch.device, precision: str = "fp32",
                   compile: bool = False, channels_last: bool | None = None) -> EpsFn:
    """Wrap an eps-model for fast inference: device, autocast, channels_last, torch.compile.

    The returned function always returns float32 eps, so the DDIM arithmetic stays fp32.
    ``channels_last`` (default: when the model has 2-D convolutions) converts the model in place
    and feeds it NHWC inputs: oneDNN's convolutions run about 1.1x faster so on the CPU
    (benchmarks/README.md) and cuDNN's use the tensor cores without transposes.

    The function carries ``probe(b, shape)``, one forward of b items of ``shape`` (C, H, W) through
    the uncompiled model (no compilation for a shape the run never uses), and ``memory_key``:
    what :func:`run_batched` measures the memory of a batch with. It becomes the job's active
    model on ``device`` (:func:`active_eps_fn`).
    """
    model = model.to(device).eval()
    if channels_last is None:
        channels_last = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = torch.compile(model, dynamic=False) if compile else model
    ctx = autocast_context(device, precision)

    def run(module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with ctx:
            out = module(x, t)
        return out.float().contiguous()

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return run(net, x, t)

    @torch.no_grad()
    def probe(batch: int, shape) -> None:
        x = torch.zeros((batch, *shape), device=device)
        # what a DDIM step holds besides the forward: x, eps, the clean estimate and the update
        eps = run(model, x, torch.full((batch,), 500, dtype=torch.long, device=device))
        ddim_step(x, eps, 0.5, 0.6)

    eps_fn.probe = probe
    eps_fn.memory_key = (getattr(model, "name", type(model).__name__), precision, bool(compile))
    _ACTIVE[str(device)] = eps_fn
    return eps_fn


#: The eps function a job prepared last, per device: the model :func:`run_batched` plans batches for.
_ACTIVE: dict[str, EpsFn] = {}


def active_eps_fn(device) -> EpsFn | None:
    """The eps function last prepared for ``device`` in this process (None before any)."""
    return _ACTIVE.get(str(torch.device(device)))


def run_batched(fn: Callable[..., torch.Tensor], batches: Iterable[tuple[int, np.ndarray, list]],
                device: torch.device, total: int | None = None, desc: str = "ddim", *, with_rows: bool = False,
                eps_fn: EpsFn | None = None, memory_limit_mb: float | None = None):
    """Apply ``fn`` to streamed (offset, x, names) batches; yield (offset, result array, names).

    Each streamed batch (its length is the configured batch: a maximum) runs in sub-batches
    that fit the job's free memory (:func:`discoverydiff.memory.plan_batch`, planned on the
    first batch from the per-item need of a forward of ``eps_fn``, by default the job's active
    model on ``device``, :func:`active_eps_fn`), made by halving (:func:`discoverydiff.memory.split`).
    An out-of-memory error halves the sub-batches again and redoes the streamed batch; at one
    item it stops the job with :class:`discoverydiff.memory.MemoryBudgetError`. Sub-batches of a
    power-of-two batch give exactly what that smaller configured batch gives.

    ``fn(x)`` gets a sub-batch on ``device``; with ``with_rows``, ``fn(x, part)`` also gets its
    slice of the streamed batch (for per-row state such as noise generators).
    """
    from tqdm.auto import tqdm

    from . import memory

    device = torch.device(device)
    eps_fn = active_eps_fn(device) if eps_fn is None else eps_fn
    planned = None
    with tqdm(total=total, desc=desc, unit="img") as bar:
        for offset, x, names in batches:
            x = np.ascontiguousarray(x, dtype=np.float32)
            if planned is None:
                planned = len(x)
                if eps_fn is not None and hasattr(eps_fn, "probe") and len(x):
                    shape = tuple(x.shape[1:])
                    planned = memory.plan_batch(f"model evaluation of a {'x'.join(map(str, shape))} image",
                                                lambda b, shape=shape: eps_fn.probe(b, shape), len(x), device,
                                                key=(shape, *eps_fn.memory_key), config_limit=memory_limit_mb,
                                                min_item_mb=4 * x[0].nbytes / 2**20)
            while True:
                try:
                    parts = []
                    for part in memory.split(len(x), planned):
                        xt = torch.from_numpy(x[part]).to(device)
                        parts.append((fn(xt, part) if with_rows else fn(xt)).float().cpu().numpy())
                    break
                except Exception as exc:  # out of memory: halve and redo the whole streamed batch
                    if not memory.is_out_of_memory(exc):
                        raise
                    parts = xt = None
                    memory.free_cached(device)
                    if planned <= 1:
                        raise memory.MemoryBudgetError(
                            f"{memory._job_name()}: {desc} ran out of memory on {device} with one image at a "
                            f"time ({exc}); free memory on the device or lower the model's resolution") from None
                    planned = max(1, planned // 2)
                    log.warning("%s: out of memory on %s; batches of at most %d from now on", desc, device, planned)
            out = np.concatenate(parts) if len(parts) > 1 else (parts[0] if parts else np.empty_like(x))
            if not np.isfinite(out).all():
                raise FloatingPointError(f"{desc}: non-finite values in batch at row {offset}")
            bar.update(len(names))
            yield offset, out, names
