"""The DDIM engine over tensor files: inversion, reconstruction, base-model sampling.

Each function streams batches from a tensor file through the model and into a new one
(written atomically), so memory stays bounded by the batch size whatever the set size.
The settings that produced a file are stored in its attributes (``t0``, ``n_steps``,
``eta``, ``model``, ``seed``) next to the normalization record of its images.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .diffusion import DDIMSettings, ddim_generate, ddim_invert, prepare_eps_fn, resolve_device, run_batched
from .errors import InputError
from .models import EpsModel
from .reconstruction import count_rows as _n_rows
from .reconstruction import psnr, reconstruction_table  # noqa: F401  (re-exported: the engine's API)
from .store import SPLIT_FEWSHOT, TensorFileWriter, iter_batches, read_attrs, shard_range

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """How to execute the model: config keys ``device``, ``precision``, ``diffusion.batch_size`` (the
    most images per model call: fewer run at once where memory is short, :mod:`discoverydiff.memory`),
    ``diffusion.compile``, ``memory_limit_mb``."""

    device: str = "auto"
    precision: str = "fp32"
    batch_size: int = 16
    compile: bool = False
    memory_limit_mb: float | None = None

    def eps_fn(self, model: EpsModel):
        device = resolve_device(self.device)
        return device, prepare_eps_fn(model, device, self.precision, self.compile)


def row_generator(seed: int, row: int) -> torch.Generator:
    """The CPU generator of one image (row) of a run: its noise does not depend on batching or sharding."""
    state = np.random.SeedSequence([int(seed), int(row)]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _copies(generators: list[torch.Generator]) -> list[torch.Generator]:
    """Copies at the generators' current states: a sub-batch redone after an out-of-memory error
    draws the same noise."""
    copies = []
    for g in generators:
        copy = torch.Generator()
        copy.set_state(g.get_state())
        copies.append(copy)
    return copies


Shard = tuple[int, int]  # (index, count), 0-based


def _shard_rows(n: int, shard: Shard, options: RunOptions) -> tuple[int, int]:
    """Row range of a shard, aligned to the batch size (bitwise equal to the unsharded run)."""
    return shard_range(n, int(shard[0]), int(shard[1]), align=options.batch_size)


def _settings_attrs(settings: DDIMSettings, model: EpsModel, seed: int) -> dict:
    return {"t0": settings.t0, "n_steps": settings.n_steps, "eta": settings.eta, "model": model.name, "seed": seed}


def _check_images(path, model: EpsModel) -> dict:
    attrs = read_attrs(path)
    import h5py

    with h5py.File(path, "r") as h5:
        shape = h5["x"].shape
    if tuple(shape[1:]) != (model.channels, model.resolution, model.resolution):
        raise InputError(path, f"holds {tuple(shape[1:])} images but the model takes "
                               f"({model.channels}, {model.resolution}, {model.resolution}); "
                               "set model.resolution / model.channels to match and re-ingest")
    return attrs


def invert_tensor_file(model: EpsModel, images_path, latents_path, settings: DDIMSettings,
                       options: RunOptions, seed: int = 0, split: str | None = SPLIT_FEWSHOT,
                       extra_attrs: dict | None = None, shard: Shard = (0, 1), allow_empty: bool = False) -> Path:
    """DDIM-invert the images of ``images_path`` (one split) into ``latents_path``.

    With ``shard = (i, k)`` only the rows of shard i of k are inverted (see
    :func:`discoverydiff.store.shard_range`); :func:`discoverydiff.store.gather_tensor_files`
    joins the k files into the one-shard result, bit for bit.
    """
    attrs = _check_images(images_path, model)
    n_all = _n_rows(images_path, split)
    if n_all == 0 and not allow_empty:
        raise InputError(images_path, f"has no images in split {split!r}")
    rows = _shard_rows(n_all, shard, options)
    n = rows[1] - rows[0]
    device, eps_fn = options.eps_fn(model)
    out_attrs = {**_settings_attrs(settings, model, seed), "source": str(images_path), "split": split,
                 "normalization": attrs.get("normalization"), "dataset": attrs.get("dataset"),
                 "wcs": attrs.get("wcs"), **(extra_attrs or {})}
    c, r = model.channels, model.resolution
    with TensorFileWriter(latents_path, (n, c, r, r), "latents", out_attrs) as out:
        batches = iter_batches(images_path, options.batch_size, split, rows)
        for offset, z, names in run_batched(lambda x: ddim_invert(eps_fn, x, model.alpha_bar, settings),
                                            batches, device, n, desc="invert", eps_fn=eps_fn,
                                            memory_limit_mb=options.memory_limit_mb):
            out.write(offset, z, names)
    return Path(latents_path)


def generate_tensor_file(model: EpsModel, latents_path, samples_path, settings: DDIMSettings,
                         options: RunOptions, seed: int = 0, kind: str = "samples",
                         extra_attrs: dict | None = None, shard: Shard = (0, 1), postprocess=None) -> Path:
    """DDIM-decode the latents of ``latents_path`` into images at ``samples_path``.

    For eta > 0, row i draws its noise from :func:`row_generator` (seed, i); ``shard`` as
    in :func:`invert_tensor_file`. ``postprocess`` (optional) maps each decoded batch (B, C, H, W)
    to what is written; it must treat every image alone, so shards give the same rows.
    """
    attrs = read_attrs(latents_path)
    rows = _shard_rows(_n_rows(latents_path, None), shard, options)
    n = rows[1] - rows[0]
    device, eps_fn = options.eps_fn(model)
    out_attrs = {**_settings_attrs(settings, model, seed), "source": str(latents_path),
                 "normalization": attrs.get("normalization"), "dataset": attrs.get("dataset"),
                 "wcs": attrs.get("wcs"), **(extra_attrs or {})}
    c, r = model.channels, model.resolution
    with TensorFileWriter(samples_path, (n, c, r, r), kind, out_attrs) as out:
        generators: list[torch.Generator] = []  # of the batch run_batched is about to decode

        def batches():
            for offset, z, names in iter_batches(latents_path, options.batch_size, None, rows):
                generators[:] = [row_generator(seed, rows[0] + offset + i) for i in range(len(names))]
                yield offset, z, names

        def decode(z, part):
            return ddim_generate(eps_fn, z, model.alpha_bar, settings, _copies(generators[part]))

        for offset, x, names in run_batched(decode, batches(), device, n, desc="generate", with_rows=True,
                                            eps_fn=eps_fn, memory_limit_mb=options.memory_limit_mb):
            out.write(offset, x if postprocess is None else postprocess(x), names)
    return Path(samples_path)


def sample_from_noise(model: EpsModel, samples_path, n: int, settings: DDIMSettings, options: RunOptions,
                      seed: int = 0, extra_attrs: dict | None = None, shard: Shard = (0, 1)) -> Path:
    """N unconditional samples: x_T ~ N(0, I) at T - 1, DDIM-decoded in ``settings.n_steps`` steps.

    Sample i starts from noise of :func:`row_generator` (seed, i) (which also gives its
    eta noise), so shards (``shard`` as in :func:`invert_tensor_file`) and batch sizes
    do not change a sample.
    """
    c, r = model.channels, model.resolution
    start, stop = _shard_rows(n, shard, options)
    full = DDIMSettings(t0=len(model.betas) - 1, n_steps=settings.n_steps, eta=settings.eta)
    device, eps_fn = options.eps_fn(model)
    attrs = {**_settings_attrs(full, model, seed), "normalization": None, "dataset": None, **(extra_attrs or {})}

    generators: list[torch.Generator] = []  # of the batch run_batched is about to decode

    def noise_batches():
        for offset in range(0, stop - start, options.batch_size):
            rows = range(start + offset, min(start + offset + options.batch_size, stop))
            generators[:] = [row_generator(seed, i) for i in rows]
            noise = torch.stack([torch.randn((c, r, r), generator=g, dtype=torch.float32) for g in generators])
            yield offset, noise.numpy(), [f"sample_{i:05d}" for i in rows]

    with TensorFileWriter(samples_path, (stop - start, c, r, r), "samples", attrs) as out:
        def decode(z, part):
            return ddim_generate(eps_fn, z, model.alpha_bar, full, _copies(generators[part]))

        for offset, x, names in run_batched(decode, noise_batches(), device, stop - start, desc="sample",
                                            with_rows=True, eps_fn=eps_fn, memory_limit_mb=options.memory_limit_mb):
            out.write(offset, np.clip(x, -1, 1), names)
    return Path(samples_path)


def sample_base_model(model: EpsModel, samples_path, id_latents_path, n: int, settings: DDIMSettings,
                      options: RunOptions, seed: int = 0, shard: Shard = (0, 1),
                      source: str | None = None) -> tuple[Path, Path]:
    """N unconditional samples of the base model (the in-domain reference) and their inversion.

    The samples (:func:`sample_from_noise`) are inverted to ``settings.t0`` with the same
    settings as the target images, giving the in-domain (ID) latents of the discovery step.
    With ``shard`` the shard's samples and their latents (gather each set of files);
    ``source`` names the gathered samples file in the latents' attributes (default
    ``samples_path``).
    """
    sample_from_noise(model, samples_path, n, settings, options, seed, shard=shard)
    invert_tensor_file(model, samples_path, id_latents_path, settings, options, seed, split=None,
                       extra_attrs={"kind_of_latents": "in-domain", "source": str(source or samples_path)},
                       allow_empty=True)
    return Path(samples_path), Path(id_latents_path)


def settings_from_config(diffusion_cfg: dict) -> tuple[DDIMSettings, RunOptions]:
    """DDIM settings and run options from the config's ``diffusion`` section (plus device/precision)."""
    settings = DDIMSettings(int(diffusion_cfg.get("t0", 900)), int(diffusion_cfg.get("n_inv_step", 80)),
                            float(diffusion_cfg.get("eta", 0.0)))
    settings.sequence()  # validates t0 and n_steps
    return settings, RunOptions(batch_size=int(diffusion_cfg.get("batch_size", 16)),
                                compile=bool(diffusion_cfg.get("compile", False)))


__all__ = ["RunOptions", "Shard", "row_generator", "invert_tensor_file", "generate_tensor_file",
           "reconstruction_table", "psnr", "sample_base_model", "sample_from_noise", "settings_from_config"]
