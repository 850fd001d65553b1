"""Training a small pixel-space DDPM eps-predictor: the base model of the embedded demo.

The method (docs/method.md, section 1) needs a frozen DDPM trained on ONE
source domain. Paper runs use published 256x256 checkpoints; the CPU demo ships its own
small model, trained here on crops of the colour photographs bundled with scikit-image
(a "natural images" source domain that has never seen astrophysical maps or galaxies).

What is here, top to bottom:

- :func:`natural_image_patches`: the source-domain data set, offline and seeded (defined in
  :mod:`discoverydiff.source_domain`, which :mod:`discoverydiff.models` shares; importable here too);
- :func:`small_unet_config`: ``diffusers.UNet2DModel`` kwargs of a CPU-sized eps-predictor;
- :func:`train_eps_model`: DDPM training with the "simple" loss, AdamW, clipping, EMA;
- :func:`save_diffusers_checkpoint`: an atomic, diffusers-format checkpoint directory
  (``UNet2DModel.from_pretrained`` and ``DDPMScheduler.from_pretrained`` both load it)
  with the training provenance in ``training.json``.

Conventions: images are float32 tensors of shape (batch, channels, height, width) with
values in [-1, 1]; timesteps are integers in [0, T); ``alpha_bar_t = prod_{s<=t} (1 - beta_s)``
and ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps`` (Ho et al. 2020, eq. 4).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from . import __version__
from .diffusion import make_betas
from .errors import InputError
from .models import load_state_dict_checked
from .source_domain import SKIMAGE_PHOTOS as SKIMAGE_PHOTOS
from .source_domain import _skimage_photo as _skimage_photo
from .source_domain import natural_image_patches as natural_image_patches
from .source_domain import source_images
from .store import atomic_path, sha256_file

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------ model, schedule


def small_unet_config(resolution: int = 32, channels: int = 3) -> dict:
    """``diffusers.UNet2DModel`` kwargs of a small DDPM-style eps-predictor.

    Three resolution levels (``resolution``, /2, /4) of widths 32, 64, 64 with two
    ResNet blocks each, and self-attention only at the coarsest level (8x8 for a 32x32
    input), as in the DDPM CIFAR-10 model (Ho et al. 2020, appendix B) but about 20 times
    smaller (1.6M parameters, a 6.5 MB safetensors file): one forward pass at batch 16 and
    32x32 takes about 0.14 s on two CPU cores, so DDIM inversion and regeneration of 30 images
    with 40 steps each takes about 20 s. Group norm over 8 groups divides every width.

    Parameters
    ----------
    resolution : int
        Image side, pixels; must be divisible by 4.
    channels : int
        Image channels (in and out: the model predicts eps).
    """
    if resolution % 4:
        raise ValueError(f"resolution must be divisible by 4 (two downsamplings), got {resolution}")
    return {
        "sample_size": resolution,
        "in_channels": channels,
        "out_channels": channels,
        "block_out_channels": (32, 64, 64),
        "layers_per_block": 2,
        "down_block_types": ("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        "up_block_types": ("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        "attention_head_dim": 32,
        "norm_num_groups": 8,
        "time_embedding_type": "positional",
        "flip_sin_to_cos": False,
        "freq_shift": 1,
        "dropout": 0.0,
    }


# ------------------------------------------------------------------------ training


def default_eps_fn(unet: torch.nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """eps prediction of ``unet`` at noisy images ``x`` (B, C, H, W) and integer timesteps ``t`` (B,).

    Works for ``diffusers`` models (``.sample``), tuple outputs, and plain modules that
    return a tensor (ADM-style). A learned-sigma model's 2C output channels are
    (eps, variance): the first C are eps.
    """
    out = unet(x, t)
    if hasattr(out, "sample"):
        out = out.sample
    elif isinstance(out, (tuple, list)):
        out = out[0]
    channels = x.shape[1]
    if out.shape[1] == 2 * channels:
        out = out[:, :channels]
    return out


def _resolve_device(device: str) -> torch.device:
    """``auto`` and ``cuda`` as :func:`discoverydiff.diffusion.resolve_device` (this job's GPU slot)."""
    from .diffusion import resolve_device

    if str(device).startswith("cuda:"):
        return torch.device(device)
    return resolve_device(str(device))


def train_eps_model(
    unet: torch.nn.Module,
    images: np.ndarray | torch.Tensor,
    betas: np.ndarray,
    steps: int,
    batch_size: int = 32,
    lr: float = 2e-4,
    seed: int = 0,
    device: str = "cpu",
    ema_decay: float | None = 0.999,
    log_every: int = 100,
    progress: bool = True,
    eps_fn: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    precision: str = "fp32",
    warmup_steps: int = 0,
    weight_decay: float = 0.0,
    lr_schedule: str = "constant",
    prediction_type: str = "epsilon",
    on_snapshot: Callable[[int, torch.nn.Module], None] | None = None,
    snapshot_every: int = 0,
    hflip: bool = True,
    micro_batch: int | None = None,
    memory_limit_mb: float | None = None,
) -> dict:
    """Train an eps-predictor with the DDPM "simple" loss (Ho et al. 2020, algorithm 1).

    Each step draws ``batch_size`` images uniformly with replacement, flips each
    horizontally with probability 1/2, draws ``t`` uniform in [0, T) and ``eps ~ N(0, I)``,
    forms ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps`` and minimises
    ``mean((eps_fn(unet, x_t, t) - eps) ** 2)`` with AdamW and gradient-norm clipping at 1.

    All randomness comes from one CPU ``torch.Generator`` seeded with ``seed``, so a run
    is bitwise reproducible on CPU (same thread count) and draws the same batches on GPU.
    The model's initial weights are the caller's (seed ``torch.manual_seed`` before
    building it).

    With ``ema_decay`` set, an exponential moving average of the weights is kept by
    diffusers' ``EMAModel`` with its default warm-up, ``decay = min(ema_decay, n / (9 + n))``
    at the n-th update (0 at the first), so
    that short runs are not dominated by the initial weights; the average is copied into
    ``unet`` at the end.

    Parameters
    ----------
    unet : torch.nn.Module
        Called as ``unet(x_t, t)``; trained in place.
    images : numpy.ndarray or torch.Tensor
        (N, C, H, W) training images in [-1, 1].
    betas : numpy.ndarray
        (T,) noise schedule, e.g. :func:`discoverydiff.diffusion.linear_betas`.
    steps : int
        Optimiser steps.
    batch_size, lr, seed : int, float, int
        Batch size, AdamW learning rate (constant after warm-up), seed.
    device : str
        ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
    ema_decay : float or None
        EMA decay; None trains without an EMA and leaves the last weights in ``unet``.
    log_every : int
        Log the mean loss of the last ``log_every`` steps to logger ``discoverydiff.training``.
    progress : bool
        Show a tqdm progress bar.
    eps_fn : callable, optional
        ``eps_fn(unet, x_t, t) -> eps`` of shape (B, C, H, W); default :func:`default_eps_fn`.
    precision : {"fp32", "bf16", "fp16"}
        bf16 autocasts the forward pass (CUDA; fp32 on GPUs without bf16); the loss and optimiser
        stay in fp32. fp16 (a setting for the model's evaluations on older GPUs) trains in fp32.
    warmup_steps : int
        Linear learning-rate warm-up from 0 over this many steps (Ho et al. used 5000).
    weight_decay : float
        AdamW decoupled weight decay (0 is plain Adam, as in Ho et al.).
    prediction_type : {"epsilon", "v_prediction", "sample"}
        What the network's output is trained to be: the noise eps (Ho et al. 2020), or the
        velocity ``v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0`` (Salimans and Ho 2022),
        from which ``eps = sqrt(alpha_bar) v + sqrt(1 - alpha_bar) x_t`` exactly. At high noise
        the eps of a v-model is x_t plus the network's output times sqrt(alpha_bar) (0.0064 at
        t = 999), so the network's errors are not amplified into the clean-image estimate
        ``x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar)``, as they are for an
        eps-network (by 1 / sqrt(alpha_bar) = 157 at t = 999), which deterministic DDIM
        sampling integrates over every step. Or the clean image x_0 itself (``sample``), whose
        errors are not amplified at low noise either, where an eps- or v-network must output
        the off-manifold part of x_t divided by sqrt(1 - alpha_bar) (the denoiser-Jacobian
        studies of :mod:`discoverydiff.molrg` train this way).
    lr_schedule : {"constant", "cosine"}
        After the warm-up, keep ``lr`` or decay it along a half cosine to 0 at the last step
        (Loshchilov and Hutter 2017). A decay to 0 lets a short run settle into a minimum that a
        constant rate keeps jumping around; the EMA then averages over a quieter stretch.
    on_snapshot : callable, optional
        ``on_snapshot(step, model)`` every ``snapshot_every`` steps, with ``model`` holding the
        weights that would be returned if training stopped there (the EMA when there is one).
        The weights are swapped back before training goes on. For learning curves of sample quality.
    snapshot_every : int
        Steps between snapshots (0: none).
    hflip : bool
        The random horizontal flip (on by default). Off for data whose distribution is not
        mirror-symmetric, e.g. a mixture of random subspaces (:mod:`discoverydiff.molrg`).
        The flips are drawn either way, so the other draws do not depend on it.
    micro_batch : int, optional
        Images per forward and backward pass: each step's batch is run in parts whose gradients
        add up to the whole batch's (the loss of a part is weighted by its share of the batch),
        so a batch that does not fit in memory trains as it would in one pass, to rounding.
        None: the most that fit in the job's free memory (:func:`discoverydiff.memory.plan_batch`,
        measured once), at most ``batch_size``; an out-of-memory error halves it and redoes the step.
    memory_limit_mb : float, optional
        The config's ``memory_limit_mb`` (see :mod:`discoverydiff.memory`).

    Returns
    -------
    dict
        ``loss``: list of per-step losses (float); ``steps``; ``seconds``: wall time of the loop.
    """
    if precision == "fp16":  # fp16 gradients need loss scaling, which this loop does not do
        logger.warning("precision fp16 trains in fp32 (fp16 is for the model's evaluations)")
        precision = "fp32"
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32', 'bf16' or 'fp16', got {precision!r}")
    if prediction_type not in TRAINED_PREDICTION_TYPES:
        raise ValueError(f"prediction_type must be one of {TRAINED_PREDICTION_TYPES}, got {prediction_type!r}")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
    if steps < 0 or batch_size < 1:
        raise ValueError(f"need steps >= 0 and batch_size >= 1, got steps={steps}, batch_size={batch_size}")
    eps_fn = default_eps_fn if eps_fn is None else eps_fn
    dev = _resolve_device(device)

    x_all = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images, dtype=torch.float32)
    if x_all.ndim != 4 or x_all.shape[0] < 1:
        raise ValueError(f"images must be (N, C, H, W) with N >= 1, got shape {tuple(x_all.shape)}")
    if not torch.isfinite(x_all).all() or x_all.abs().max() > 1.0 + 1e-4:
        raise ValueError("images must be finite and in [-1, 1] (see discoverydiff.normalize)")
    x_all = x_all.to(dev)
    alpha_bar = torch.as_tensor(np.cumprod(1.0 - np.asarray(betas, dtype=np.float64)), dtype=torch.float32, device=dev)
    n_images, n_timesteps = x_all.shape[0], alpha_bar.shape[0]

    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    unet.to(dev)
    was_training = unet.training
    unet.train()
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    ema = EMAModel(params, decay=float(ema_decay)) if ema_decay is not None else None
    if precision == "bf16" and dev.type == "cuda":
        from .diffusion import autocast_context

        autocast = autocast_context(dev, "bf16")  # fp32 (with a warning) on cards without bf16
    else:
        autocast = (
            torch.autocast(device_type=dev.type, dtype=torch.bfloat16)
            if precision == "bf16"
            else contextlib.nullcontext()
        )

    from . import memory

    if micro_batch is None:
        micro_batch = _plan_micro_batch(unet, eps_fn, x_all, batch_size, dev, autocast, ema is not None,
                                        memory_limit_mb)
    micro_batch = max(1, min(int(micro_batch), batch_size))

    losses: list[float] = []
    start = time.perf_counter()
    bar = tqdm(range(steps), desc="train eps-model", disable=not progress, dynamic_ncols=True)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, lr, warmup_steps, lr_schedule)
        # Every draw on one CPU generator, in a fixed order: the batches do not depend on the device.
        index = torch.randint(n_images, (batch_size,), generator=generator)
        t = torch.randint(n_timesteps, (batch_size,), generator=generator)
        flip = torch.rand(batch_size, generator=generator) < 0.5
        noise = torch.randn((batch_size, *x_all.shape[1:]), generator=generator)
        index, t, flip, noise = index.to(dev), t.to(dev), flip.to(dev), noise.to(dev)

        x0 = x_all[index]
        if hflip:
            x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
        ab = alpha_bar[t][:, None, None, None]
        x_t = ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise
        if prediction_type == "epsilon":
            target = noise
        elif prediction_type == "v_prediction":
            target = ab.sqrt() * noise - (1.0 - ab).sqrt() * x0
        else:  # "sample": the clean image itself
            target = x0
        while True:
            optimizer.zero_grad(set_to_none=True)
            try:
                loss = _accumulate_gradients(unet, eps_fn, x_t, t, target, micro_batch, autocast)
                break
            except Exception as exc:
                if not memory.is_out_of_memory(exc) or micro_batch <= 1:
                    raise
                optimizer.zero_grad(set_to_none=True)
                memory.free_cached(dev)
                micro_batch = max(1, micro_batch // 2)
                logger.warning("training: out of memory on %s; %d images per pass from now on", dev, micro_batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss at step {step}; lower lr (now {lr})")

        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if ema is not None:
            ema.step(params)

        losses.append(float(loss.detach()))
        if on_snapshot is not None and snapshot_every and (step + 1) % snapshot_every == 0:
            if ema is not None:
                ema.store(params)
                ema.copy_to(params)
            unet.eval()
            on_snapshot(step + 1, unet)
            unet.train()
            if ema is not None:
                ema.restore(params)
        if progress:
            bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
        if log_every and ((step + 1) % log_every == 0 or step + 1 == steps):
            window = losses[-log_every:]
            logger.info(
                "step %d/%d  loss %.5f (mean of last %d)  %.2f s/step",
                step + 1, steps, sum(window) / len(window), len(window), (time.perf_counter() - start) / (step + 1),
            )
    bar.close()
    seconds = time.perf_counter() - start

    if ema is not None:
        ema.copy_to(params)
    unet.train(was_training)
    return {"loss": losses, "steps": steps, "seconds": seconds}


def _accumulate_gradients(unet, eps_fn, x_t, t, target, micro_batch: int, autocast) -> torch.Tensor:
    """Backpropagate the batch's mean squared error in parts of at most ``micro_batch`` images.

    A part's loss is its mean error times its share of the batch, so the gradients add up to the
    whole batch's; one part is exactly the plain step. Returns the batch's loss (detached).
    """
    from .memory import split

    n = x_t.shape[0]
    parts = split(n, micro_batch)
    total = None
    for part in parts:
        with autocast:
            prediction = eps_fn(unet, x_t[part], t[part])
        loss = torch.nn.functional.mse_loss(prediction.float(), target[part])
        if len(parts) > 1:
            loss = loss * ((part.stop - part.start) / n)
        loss.backward()
        total = loss.detach() if total is None else total + loss.detach()
    return total


def _plan_micro_batch(unet, eps_fn, x_all, batch_size: int, device, autocast, has_ema: bool,
                      memory_limit_mb) -> int:
    """Images per training pass that fit (:func:`discoverydiff.memory.plan_batch`): a forward and
    backward pass of b images measured, plus the optimiser's state (AdamW: 2 copies of the
    weights, an EMA one more) that the first step allocates."""
    from . import memory

    params = [p for p in unet.parameters() if p.requires_grad]
    state_mb = (2 + int(has_ema)) * sum(p.numel() * p.element_size() for p in params) / 2**20

    def probe(b: int) -> None:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            x = x_all[:1].expand(b, *x_all.shape[1:]).contiguous()
            t = torch.zeros((b,), dtype=torch.long, device=device)
            with autocast:
                out = eps_fn(unet, x, t)
            out.float().pow(2).mean().backward()
        for p in params:
            p.grad = None

    shape = tuple(x_all.shape[1:])
    return memory.plan_batch(f"training pass of a {'x'.join(map(str, shape))} image", probe, batch_size, device,
                             key=(shape, type(unet).__name__, sum(p.numel() for p in params)),
                             config_limit=memory_limit_mb, extra_mb=state_mb,
                             min_item_mb=4 * x_all[0].nbytes / 2**20)


LR_SCHEDULES = ("constant", "cosine")
#: The network outputs a diffusers checkpoint may declare (scheduler_config.json ``prediction_type``).
TRAINED_PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def learning_rate(step: int, steps: int, lr: float, warmup_steps: int = 0, schedule: str = "constant") -> float:
    """Learning rate of 0-based optimiser ``step`` of ``steps``: linear warm-up, then constant or half-cosine to 0."""
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if schedule == "cosine":
        span = max(1, steps - warmup_steps)
        return 0.5 * lr * (1.0 + float(np.cos(np.pi * min(1.0, (step - warmup_steps) / span))))
    return lr


def summarize_losses(losses, n_windows: int = 10) -> list[dict]:
    """The loss curve in ``n_windows`` consecutive windows: first step, last step, mean loss.

    Small enough for ``training.json``; steps are 1-based.
    """
    losses = np.asarray(losses, dtype=np.float64)
    if losses.size == 0:
        return []
    edges = np.linspace(0, losses.size, min(n_windows, losses.size) + 1).round().astype(int)
    return [
        {"first_step": int(a) + 1, "last_step": int(b), "mean_loss": float(losses[a:b].mean())}
        for a, b in zip(edges[:-1], edges[1:])
    ]


# ---------------------------------------------------------------------- checkpoint


def save_diffusers_checkpoint(unet, out_dir, betas_info: dict, extra: dict | None = None) -> None:
    """Write a diffusers-format checkpoint directory, atomically.

    Contents: ``config.json`` and ``diffusion_pytorch_model.safetensors`` (from
    ``unet.save_pretrained``), ``scheduler_config.json`` (a ``DDPMScheduler`` with the model's
    ``prediction_type``), and ``training.json``: ``extra`` (the training
    provenance: data, steps, batch size, lr, seed, losses, wall time), the schedule, and
    the discoverydiff, torch, diffusers and numpy versions. Everything is written to a
    temporary sibling directory first and renamed into place, replacing an existing
    ``out_dir`` only once the new one is complete.

    Parameters
    ----------
    unet : diffusers.ModelMixin
        The model; anything with ``save_pretrained`` (e.g. ``UNet2DModel``).
    out_dir : str or Path
        Destination directory.
    betas_info : dict
        ``num_train_timesteps``, ``beta_start``, ``beta_end`` and optionally
        ``beta_schedule`` (default ``"linear"``), ``clip_sample`` (default True) and
        ``prediction_type`` (default ``"epsilon"``).
    extra : dict, optional
        JSON-serialisable provenance written to ``training.json``.
    """
    import diffusers
    from diffusers import DDPMScheduler

    if not hasattr(unet, "save_pretrained"):
        raise TypeError(f"{type(unet).__name__} has no save_pretrained(); only diffusers models can be saved here")
    missing = {"num_train_timesteps", "beta_start", "beta_end"} - set(betas_info)
    if missing:
        raise ValueError(f"betas_info lacks {sorted(missing)}")
    schedule = {
        "num_train_timesteps": int(betas_info["num_train_timesteps"]),
        "beta_start": float(betas_info["beta_start"]),
        "beta_end": float(betas_info["beta_end"]),
        "beta_schedule": str(betas_info.get("beta_schedule", "linear")),
    }
    scheduler = DDPMScheduler(
        **schedule,
        prediction_type=str(betas_info.get("prediction_type", "epsilon")),
        clip_sample=bool(betas_info.get("clip_sample", True)),
        variance_type="fixed_small",
    )
    provenance = {
        **(extra or {}),
        "schedule": schedule,
        "software": {
            "discoverydiff": __version__,
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "numpy": np.__version__,
        },
        "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

    with atomic_path(out_dir) as tmp:
        unet.save_pretrained(tmp, safe_serialization=True)
        scheduler.save_config(tmp)
        (tmp / "training.json").write_text(json.dumps(provenance, indent=2, sort_keys=True, default=_json_default))
        # safetensors writes through a private temporary file (mode 0600); a shipped checkpoint must be readable.
        for path in tmp.iterdir():
            path.chmod(0o644)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, tuple)):
        return value.tolist() if isinstance(value, np.ndarray) else list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# ------------------------------------------------------------------------ rule train_base


def train_base_model(model_cfg: dict, out_dir, seed: int = 0, device: str = "auto", precision: str = "fp32",
                     on_snapshot: Callable[[int, torch.nn.Module], None] | None = None,
                     snapshot_every: int = 0) -> dict:
    """Rule ``train_base``: train the demo-sized base model from config and save it.

    The source domain is ``model.source_images`` (see :func:`discoverydiff.source_domain.source_images`),
    the architecture :func:`small_unet_config` at ``model.resolution`` / ``model.channels``, the
    schedule ``model.schedule`` and the optimiser settings ``model.train`` (steps, batch_size,
    lr, lr_schedule, warmup_steps, ema_decay, init_from). With ``init_from`` (a diffusers
    checkpoint directory of the same architecture) training continues from those weights, and
    that checkpoint's own ``training.json`` and weight digest are kept in the new one, so the
    whole chain of runs stays on record. The result is a diffusers checkpoint directory at
    ``out_dir`` that ``model.source: trained`` with ``model.path: out_dir`` loads.

    Returns
    -------
    dict
        The summary written to ``training.json`` (without the per-step losses).
    """
    from diffusers import UNet2DModel

    resolution, channels = int(model_cfg.get("resolution", 32)), int(model_cfg.get("channels", 3))
    schedule = {"beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02, "num_train_timesteps": 1000,
                **(model_cfg.get("schedule") or {})}
    train = {"steps": 20000, "batch_size": 64, "lr": 2e-4, "ema_decay": 0.999, "warmup_steps": 0,
             "lr_schedule": "constant", "init_from": None, "prediction_type": "epsilon",
             **(model_cfg.get("train") or {})}
    images, description = source_images(model_cfg.get("source_images") or {}, resolution, channels, seed)
    betas = make_betas(schedule["beta_schedule"], int(schedule["num_train_timesteps"]),
                       float(schedule["beta_start"]), float(schedule["beta_end"]))

    torch.manual_seed(int(seed))
    unet = UNet2DModel(**small_unet_config(resolution, channels))
    init = _load_initial_weights(unet, train["init_from"]) if train["init_from"] else None
    n_params = sum(p.numel() for p in unet.parameters())
    logger.info("training a %d-parameter UNet on %s for %d steps%s", n_params, description, train["steps"],
                f" from {train['init_from']}" if init else "")
    result = train_eps_model(unet, images, betas, steps=int(train["steps"]), batch_size=int(train["batch_size"]),
                             lr=float(train["lr"]), seed=int(seed), device=device, ema_decay=train["ema_decay"],
                             precision="bf16" if precision == "bf16" else "fp32", progress=False,
                             warmup_steps=int(train["warmup_steps"]), lr_schedule=str(train["lr_schedule"]),
                             prediction_type=str(train["prediction_type"]),
                             on_snapshot=on_snapshot, snapshot_every=snapshot_every)
    keys = ("steps", "batch_size", "lr", "lr_schedule", "ema_decay", "warmup_steps", "init_from", "prediction_type")
    summary = {
        "data": description,
        "n_images": int(images.shape[0]),
        "resolution": resolution,
        "channels": channels,
        "seed": int(seed),
        "training": {**{k: train[k] for k in keys},
                     "objective": ("DDPM simple loss, eps-prediction (Ho et al. 2020)"
                                   if train["prediction_type"] == "epsilon" else
                                   "MSE of the velocity v (Salimans and Ho 2022), uniform timesteps"),
                     "optimizer": "AdamW",
                     "augmentation": "random horizontal flip", "gradient_clip_norm": 1.0,
                     "device": str(device), "torch_threads": torch.get_num_threads(),
                     "seconds": result["seconds"], "loss_curve": summarize_losses(result["loss"], 12)},
        "model": {"class": "diffusers.UNet2DModel",
                  "config_function": f"discoverydiff.training.small_unet_config({resolution}, {channels})",
                  "init_seed": int(seed), "parameters": n_params},
        "reproduce": "snakemake results/base_model/trained with this model section (rule train_base)",
    }
    if init:
        summary["initialized_from"] = init
    save_diffusers_checkpoint(unet.cpu(), out_dir, {**schedule, "prediction_type": train["prediction_type"]},
                              extra=summary)
    return summary


def _load_initial_weights(unet: torch.nn.Module, path) -> dict:
    """Load a diffusers checkpoint directory's weights into ``unet``; return its provenance record.

    The record holds the path, the SHA-256 of the safetensors file and that checkpoint's own
    ``training.json`` (which may itself name an earlier checkpoint).
    """
    from safetensors.torch import load_file

    path = Path(path)
    weights = path / "diffusion_pytorch_model.safetensors"
    if not weights.is_file():
        raise InputError(path, "model.train.init_from must be a diffusers checkpoint directory holding "
                               "diffusion_pytorch_model.safetensors")
    load_state_dict_checked(unet, load_file(str(weights)), weights)
    record = {"path": str(path), "sha256": sha256_file(weights)}
    if (path / "training.json").is_file():
        record["training"] = json.loads((path / "training.json").read_text())
    return record
