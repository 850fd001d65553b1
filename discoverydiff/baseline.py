"""The reference points of discovery: vanilla fine-tuning, and the few-shot set's optimal denoiser.

:func:`finetune_and_sample` is the paper's baseline. A copy of the base model is trained with
the DDPM epsilon-MSE loss (Adam) on the few-shot set for a configurable number of steps, then
sampled from noise exactly as the base model is (:func:`~discoverydiff.engine.sample_from_noise`).
The paper reports that this barely moves the output towards the target domain; the statistics
stage measures by how much.

:func:`sample_empirical` samples the exact optimal denoiser of the few-shot set (its empirical
distribution) from the same initial noise as the base model and the fine-tuned baseline: it
can only return the targets, so its samples are the memorization reference point of the
reproducibility scores (``rpscore_vs_empirical`` in comparison.csv).
"""

from __future__ import annotations

import copy
import logging

from .engine import RunOptions, sample_from_noise
from .errors import ConfigError
from .models import EmpiricalDenoiser, EpsModel, NoiseSchedule
from .store import SPLIT_FEWSHOT, read_tensor_file

log = logging.getLogger(__name__)


def finetune_and_sample(model: EpsModel, images_path, samples_path, settings, options: RunOptions, cfg: dict,
                        n_samples: int, seed: int = 0):
    """Fine-tune a copy of ``model`` on the few-shot images, then draw ``n_samples``.

    Parameters
    ----------
    cfg : dict
        The config's ``baseline`` section: ``steps``, ``batch_size``, ``lr``.
    """
    from .diffusion import resolve_device
    from .training import train_eps_model

    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"fine-tuning needs a neural base model (model.source diffusers, trained or adm); "
                          f"{model.name.split(':')[0]} has no weights to train")
    images = read_tensor_file(images_path, split=SPLIT_FEWSHOT)
    tuned = copy.deepcopy(model)
    device = resolve_device(options.device)
    history = train_eps_model(tuned, images.x, model.betas, steps=int(cfg.get("steps", 500)),
                              batch_size=int(cfg.get("batch_size", 16)), lr=float(cfg.get("lr", 1e-4)),
                              seed=seed, device=str(device), ema_decay=None, precision=options.precision,
                              log_every=max(1, int(cfg.get("steps", 500)) // 10),
                              memory_limit_mb=options.memory_limit_mb)
    losses = history["loss"]
    log.info("fine-tuned on %d images for %d steps: loss %.4f -> %.4f", len(images.names), len(losses),
             losses[0], sum(losses[-10:]) / len(losses[-10:]))
    tuned.name = f"finetuned({model.name};steps={len(losses)};lr={cfg.get('lr', 1e-4)})"
    attrs = {"normalization": images.attrs.get("normalization"), "dataset": images.attrs.get("dataset"),
             "wcs": images.attrs.get("wcs"),
             "finetune": {"steps": len(losses), "batch_size": int(cfg.get("batch_size", 16)),
                          "lr": float(cfg.get("lr", 1e-4)), "first_loss": losses[0], "last_loss": losses[-1]}}
    return sample_from_noise(tuned.eval(), samples_path, n_samples, settings, options, seed, extra_attrs=attrs)


def sample_empirical(model: EpsModel | NoiseSchedule, images_path, samples_path, settings, options: RunOptions,
                     n_samples: int, seed: int = 0):
    """``n_samples`` of the few-shot set's optimal (empirical) denoiser under ``model``'s noise schedule
    (a loaded model, or :func:`~discoverydiff.models.load_schedule`'s schedule alone).

    Sample ``sample_i`` starts from the same noise as the base model's and the fine-tuned
    baseline's ``sample_i`` (:func:`~discoverydiff.engine.sample_from_noise`, same ``seed``).
    """
    images = read_tensor_file(images_path, split=SPLIT_FEWSHOT)
    if images.x.shape[1:] != (model.channels, model.resolution, model.resolution):
        raise ConfigError(f"{images_path}: few-shot images {images.x.shape[1:]} do not match the model's "
                          f"{(model.channels, model.resolution, model.resolution)}")
    empirical = EpsModel(EmpiricalDenoiser(images.x, model.alpha_bar), model.betas,
                         f"empirical(fewshot of {images.attrs.get('dataset')};n={len(images.names)})",
                         model.channels, model.resolution).eval()
    attrs = {"normalization": images.attrs.get("normalization"), "dataset": images.attrs.get("dataset"),
             "wcs": images.attrs.get("wcs"), "empirical_of": list(images.names)}
    options = copy.copy(options)
    options.compile, options.precision = False, "fp32"  # two matrix products and a softmax: keep them exact
    return sample_from_noise(empirical, samples_path, n_samples, settings, options, seed, extra_attrs=attrs)
