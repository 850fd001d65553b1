"""Base models: every loader returns an :class:`EpsModel`, an eps-predictor with its schedule.

Sources (config ``model.source``):

``diffusers``
    A local diffusers ``UNet2DModel`` directory (config.json + safetensors), e.g. the
    google/ddpm-celebahq-256 / church / bedroom / cat checkpoints of the paper, downloaded
    by the user. The schedule comes from its ``scheduler_config.json`` when present.
``adm``
    An OpenAI guided-diffusion / improved-diffusion UNet checkpoint (a ``.pt`` state dict,
    or ``.safetensors``) plus its architecture flags, e.g. the P2-weighting AFHQ-dog 256
    model. Learned-sigma models (2C output channels) give eps from the first C.
``trained``
    A small diffusers UNet trained by the workflow's ``train_base`` rule (or the shipped
    demo checkpoint), loaded like ``diffusers``.
``analytic_gaussian``
    The closed-form optimal denoiser of a Gaussian fitted to a source image set.
``empirical``
    The closed-form optimal denoiser of the empirical distribution of a source set (the
    "memorizing" model of the reproducibility literature).

The last two need no weights and are exact references for tests.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch

from .diffusion import alphas_cumprod, make_betas
from .errors import ConfigError, InputError
from .source_domain import source_images as source_images
from .store import sha256_file

log = logging.getLogger(__name__)

MODEL_SOURCES = ("diffusers", "adm", "trained", "analytic_gaussian", "empirical")
#: Network outputs a diffusers checkpoint may declare in scheduler_config.json.
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


class EpsModel(torch.nn.Module):
    """An eps-predictor ``eps(x_t, t)`` and the noise schedule it was trained with.

    Parameters
    ----------
    net : torch.nn.Module
        Called as ``net(x, t)``; may return a tensor or an object with ``.sample``.
    betas : ndarray, shape (T,)
    name : str
        Provenance string (source, path, weights hash).
    channels, resolution : int
        Image channels C and side H = W the model takes.
    prediction_type : {"epsilon", "v_prediction", "sample"}
        What ``net`` outputs (diffusers' names): eps itself; the velocity
        ``v = sqrt(a) eps - sqrt(1 - a) x0``, turned into ``eps = sqrt(a) v + sqrt(1 - a) x_t``;
        or the clean image x0, turned into ``eps = (x_t - sqrt(a) x0) / sqrt(1 - a)``. Both
        conversions are exact, so every model looks like an eps-predictor to the DDIM engine.
    """

    def __init__(self, net: torch.nn.Module, betas: np.ndarray, name: str, channels: int, resolution: int,
                 prediction_type: str = "epsilon"):
        super().__init__()
        if prediction_type not in PREDICTION_TYPES:
            raise ConfigError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")
        self.net = net
        self.betas = np.asarray(betas, dtype=np.float64)
        self.alpha_bar = alphas_cumprod(self.betas)
        self.name = name
        self.channels = channels
        self.resolution = resolution
        self.prediction_type = prediction_type
        # sqrt(alpha_bar), sqrt(1 - alpha_bar) per timestep, moved with the model (not saved with it)
        root = torch.from_numpy(np.stack([np.sqrt(self.alpha_bar), np.sqrt(1.0 - self.alpha_bar)], axis=1))
        self.register_buffer("_roots", root, persistent=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps for x (B, C, H, W) at integer timesteps t (B,)."""
        out = self.net(x, t)
        out = getattr(out, "sample", out)
        if out.shape[1] == 2 * x.shape[1]:  # learned sigma: [eps, variance interpolation]
            out = out[:, : x.shape[1]]
        if self.prediction_type == "epsilon":
            return out
        roots = self._roots[t.to(self._roots.device)].to(device=x.device, dtype=out.dtype)
        sqrt_a, sqrt_1ma = roots[:, 0, None, None, None], roots[:, 1, None, None, None]
        if self.prediction_type == "v_prediction":
            return sqrt_a * out + sqrt_1ma * x.to(out.dtype)
        return (x.to(out.dtype) - sqrt_a * out) / sqrt_1ma


# ----------------------------------------------------------------------------- closed-form models
class GaussianDenoiser(torch.nn.Module):
    """Exact eps of data ~ N(mu, Sigma) under x_t = sqrt(a) x0 + sqrt(1 - a) eps.

    Sigma = U diag(lam) U^T + floor (I - U U^T), with U the top principal directions of the
    source set (at most N - 1 of them), so it scales to 3x256x256 images. Then::

        eps(x_t) = sqrt(1 - a) (a Sigma + (1 - a) I)^-1 (x_t - sqrt(a) mu)

    evaluated in the eigenbasis.
    """

    def __init__(self, images: np.ndarray, alpha_bar: np.ndarray, rank: int | None = None,
                 floor: float | None = None):
        super().__init__()
        x = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
        n, d = x.shape
        mu = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - mu, full_matrices=False)
        lam = s**2 / max(n - 1, 1)
        numerical_rank = int((lam > lam.max() * 1e-10).sum()) if lam.size and lam.max() > 0 else 0
        keep = min(rank or n, numerical_rank)
        residual = lam[keep:].sum() / max(d - keep, 1) if d > keep else 0.0
        self.floor = float(floor if floor is not None else max(residual, 1e-6))
        self.register_buffer("mu", torch.from_numpy(mu).float())
        self.register_buffer("U", torch.from_numpy(vt[:keep].T.copy()).float())  # (d, k)
        self.register_buffer("lam", torch.from_numpy(lam[:keep]).float())
        self.register_buffer("abar", torch.from_numpy(alpha_bar).float())
        self.full_rank = keep >= d
        self.shape = images.shape[1:]

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        a = self.abar[t].to(x.dtype)[:, None]
        r = x.reshape(b, -1) - a.sqrt() * self.mu
        coef = r @ self.U  # (b, k)
        inside = (coef / (a * self.lam + 1 - a)) @ self.U.T
        out = inside
        if not self.full_rank:
            out = out + (r - coef @ self.U.T) / (a * self.floor + 1 - a)
        return ((1 - a).sqrt() * out).reshape(x.shape)


class EmpiricalDenoiser(torch.nn.Module):
    """Exact eps of the empirical distribution of N source images (a mixture of deltas).

    E[x0 | x_t] = sum_i w_i y_i with w = softmax(-||x_t - sqrt(a) y_i||^2 / (2 (1 - a))), and
    eps = (x_t - sqrt(a) E[x0 | x_t]) / sqrt(1 - a). Generating from it reproduces training
    images: the memorization limit.
    """

    def __init__(self, images: np.ndarray, alpha_bar: np.ndarray):
        super().__init__()
        y = torch.from_numpy(np.asarray(images, dtype=np.float32).reshape(len(images), -1))
        self.register_buffer("y", y)
        self.register_buffer("y_sq", (y.double() ** 2).sum(1).float())
        self.register_buffer("abar", torch.from_numpy(alpha_bar).float())

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        a = self.abar[t].to(x.dtype)[:, None]
        flat = x.reshape(b, -1)
        # ||x - sqrt(a) y||^2 up to a per-row constant, which the softmax ignores
        logits = (2 * a.sqrt() * (flat @ self.y.T) - a * self.y_sq[None]) / (2 * (1 - a))
        x0 = torch.softmax(logits, dim=1) @ self.y
        return ((flat - a.sqrt() * x0) / (1 - a).sqrt()).reshape(x.shape)


# ----------------------------------------------------------------------------- loaders
def _schedule_from(cfg: dict) -> np.ndarray:
    return make_betas(cfg.get("beta_schedule", "linear"), int(cfg.get("num_train_timesteps", 1000)),
                      float(cfg.get("beta_start", 1e-4)), float(cfg.get("beta_end", 0.02)))


def _unet_dir(path: Path) -> Path:
    """The folder of a diffusers model directory that holds the UNet's config.json."""
    if not path.is_dir():
        raise InputError(path, "model directory does not exist (a diffusers UNet2DModel folder "
                               "with config.json and diffusion_pytorch_model.safetensors is expected)")
    unet_dir = path / "unet" if (path / "unet" / "config.json").exists() else path
    if not (unet_dir / "config.json").exists():
        raise InputError(unet_dir, "has no config.json: not a diffusers model directory")
    return unet_dir


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(path, f"is not valid JSON ({exc})") from None


def _scheduler_config(path: Path) -> dict:
    """The directory's scheduler_config.json (top level or scheduler/), {} when there is none."""
    for candidate in (path / "scheduler_config.json", path / "scheduler" / "scheduler_config.json"):
        if candidate.exists():
            return _read_json(candidate)
    return {}


def load_diffusers_unet(path, source: str = "diffusers") -> EpsModel:
    """Load a local diffusers UNet2DModel directory (safetensors preferred)."""
    path = Path(path)
    unet_dir = _unet_dir(path)
    weights = sorted(unet_dir.glob("diffusion_pytorch_model*.safetensors")) or sorted(unet_dir.glob("*.bin"))
    if not weights:
        raise InputError(unet_dir, "holds no diffusion_pytorch_model.safetensors (or .bin) weights")
    from diffusers import UNet2DModel

    config = _read_json(unet_dir / "config.json")
    if config.get("_class_name", "UNet2DModel") != "UNet2DModel":
        raise InputError(unet_dir / "config.json",
                         f"describes a {config['_class_name']}, but an unconditional UNet2DModel is needed")
    try:
        net = UNet2DModel.from_pretrained(unet_dir, use_safetensors=weights[0].suffix == ".safetensors",
                                          low_cpu_mem_usage=False)
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputError(unet_dir, f"cannot be loaded as a UNet2DModel: {exc}") from None
    sched = _scheduler_config(path)
    prediction = sched.get("prediction_type", "epsilon")
    if prediction not in PREDICTION_TYPES:
        raise InputError(path, f"scheduler_config.json declares prediction_type {prediction!r}; "
                               f"supported are {', '.join(PREDICTION_TYPES)}")
    betas = _schedule_from(sched)
    name = f"{source}:{path}:sha256={sha256_file(weights[0])[:16]}"
    return EpsModel(net.eval(), betas, name, int(net.config.in_channels), int(net.config.sample_size), prediction)


def _read_state_dict(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle refusing non-tensor content, corrupt zip, ...
        raise InputError(path, f"cannot be read as a weights-only PyTorch state dict ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(path, f"holds a {type(state).__name__}, not a state dict")
    return state


def load_state_dict_checked(net: torch.nn.Module, state: dict, path) -> None:
    """load_state_dict(strict=True) with an error that lists what differs."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) e.g. {missing[:3]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) e.g. {unexpected[:3]}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es) e.g. {shapes[:2]}")
        raise InputError(path, "does not match the configured architecture: " + "; ".join(parts)
                         + ". Check model.adm_flags against the checkpoint's training flags")
    net.load_state_dict(state, strict=True)


def load_adm(path, flags: dict, schedule: dict | None = None) -> EpsModel:
    """Load an OpenAI guided-diffusion UNet checkpoint with its architecture flags."""
    from .adm import adm_from_flags

    path = Path(path)
    if not path.exists():
        raise InputError(path, "ADM checkpoint does not exist")
    state = _read_state_dict(path)  # a bad file is reported before any flag problem
    try:
        net = adm_from_flags(dict(flags))
    except ValueError as exc:
        raise ConfigError(f"model.adm_flags: {exc}") from None
    load_state_dict_checked(net, state, path)
    flags = dict(flags)
    betas = _schedule_from({"beta_schedule": "linear" if flags.get("noise_schedule", "linear") == "linear"
                            else "cosine", "num_train_timesteps": flags.get("diffusion_steps", 1000),
                            **(schedule or {})})
    in_channels = 3  # guided-diffusion's create_model always builds RGB models
    name = f"adm:{path}:sha256={sha256_file(path)[:16]}"
    return EpsModel(net.eval(), betas, name, in_channels, int(flags.get("image_size", 256)))


def analytic_model(kind: str, images: np.ndarray, schedule: dict | None = None, description: str = "") -> EpsModel:
    """The closed-form ``analytic_gaussian`` or ``empirical`` model of a source image set (N, C, H, W)."""
    betas = _schedule_from(schedule or {})
    abar = alphas_cumprod(betas)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[2] != images.shape[3]:
        raise ConfigError(f"source images must be (N, C, H, H), got {images.shape}")
    if kind == "analytic_gaussian":
        net = GaussianDenoiser(images, abar)
    elif kind == "empirical":
        net = EmpiricalDenoiser(images, abar)
    else:
        raise ConfigError(f"unknown closed-form model {kind!r}")
    digest = hashlib.sha256(images.tobytes()).hexdigest()[:16]
    return EpsModel(net, betas, f"{kind}:{description}:n={len(images)}:sha256={digest}",
                    images.shape[1], images.shape[2])


class NoiseSchedule:
    """What a closed-form sampler needs of a base model: its betas, channels and resolution."""

    def __init__(self, betas: np.ndarray, channels: int, resolution: int, name: str):
        self.betas = np.asarray(betas, dtype=np.float64)
        self.alpha_bar = alphas_cumprod(self.betas)
        self.channels, self.resolution, self.name = int(channels), int(resolution), name


def load_schedule(cfg: dict, seed: int = 0) -> NoiseSchedule:
    """The noise schedule, channels and resolution of the config's base model.

    For a diffusers directory they come from its JSON files alone: importing diffusers and
    loading the network costs a CPU job about 5 s, and rule sample_empirical (the few-shot
    set's own optimal denoiser) never evaluates the network. Other sources load the model.
    """
    source = cfg.get("source", "trained")
    if source in ("diffusers", "trained") and cfg.get("path"):
        path = Path(cfg["path"])
        unet_dir = _unet_dir(path)
        net_cfg = _read_json(unet_dir / "config.json")
        channels, resolution = int(net_cfg.get("in_channels", 3)), int(net_cfg.get("sample_size", 32))
        want = (int(cfg.get("channels", 3)), int(cfg.get("resolution", 32)))
        if (channels, resolution) != want:
            raise ConfigError(f"the {source} model takes {channels}x{resolution}x{resolution} images but "
                              f"model.channels/resolution say {want[0]}x{want[1]}x{want[1]}")
        return NoiseSchedule(_schedule_from(_scheduler_config(path)), channels, resolution, f"{source}:{path}")
    model = load_model(cfg, seed)
    return NoiseSchedule(model.betas, model.channels, model.resolution, model.name)


def load_model(cfg: dict, seed: int = 0) -> EpsModel:
    """Build the base model the config's ``model`` section describes."""
    source = cfg.get("source", "trained")
    if source not in MODEL_SOURCES:
        raise ConfigError(f"model.source must be one of {MODEL_SOURCES}, got {source!r}")
    resolution, channels = int(cfg.get("resolution", 32)), int(cfg.get("channels", 3))
    if source in ("diffusers", "trained"):
        if not cfg.get("path"):
            raise ConfigError(f"model.path is required for model.source: {source}")
        model = load_diffusers_unet(cfg["path"], source)
    elif source == "adm":
        if not cfg.get("path"):
            raise ConfigError("model.path (the .pt checkpoint) is required for model.source: adm")
        model = load_adm(cfg["path"], cfg.get("adm_flags") or {}, cfg.get("schedule"))
    else:
        images, description = source_images(cfg.get("source_images") or {}, resolution, channels, seed)
        model = analytic_model(source, images, cfg.get("schedule"), description)
    if (model.channels, model.resolution) != (channels, resolution):
        raise ConfigError(f"the {source} model takes {model.channels}x{model.resolution}x{model.resolution} "
                          f"images but model.channels/resolution say {channels}x{resolution}x{resolution}")
    log.info("base model %s (%d parameters)", model.name, sum(p.numel() for p in model.parameters()))
    return model
