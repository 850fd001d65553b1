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
from .normalize import NormalizationRecord
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


def _n_rows(path, split: str | None) -> int:
    import h5py

    with h5py.File(path, "r") as h5:
        if split is None:
            return h5["x"].shape[0]
        labels = h5["split"][()] if "split" in h5 else None
    if labels is None:
        raise InputError(path, f"asked for split {split!r} but the file has no 'split' dataset")
    return int(sum((s.decode() if isinstance(s, bytes) else s) == split for s in labels))


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
                         extra_attrs: dict | None = None, shard: Shard = (0, 1)) -> Path:
    """DDIM-decode the latents of ``latents_path`` into images at ``samples_path``.

    For eta > 0, row i draws its noise from :func:`row_generator` (seed, i); ``shard`` as
    in :func:`invert_tensor_file`.
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
            out.write(offset, x, names)
    return Path(samples_path)


def psnr(mse: np.ndarray, peak_to_peak: float = 2.0) -> np.ndarray:
    """PSNR in dB of images in [-1, 1] (peak-to-peak range 2)."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(peak_to_peak**2 / np.asarray(mse, dtype=np.float64))


def reconstruction_table(images_path, reconstruction_path, split: str | None = SPLIT_FEWSHOT,
                         batch_size: int = 64):
    """Per-image MSE / PSNR (normalized space) and the relative error in physical units.

    The physical error is the median over pixels of |x_rec - x| / |x| after mapping both
    through the dataset's normalization record (for log10 fields, a median relative error);
    pixels whose true value is 0 are left out (NaN for an image of zeros).
    Both files are streamed in batches, so memory does not grow with the set.
    """
    import pandas as pd

    record_json = read_attrs(images_path).get("normalization")
    record = NormalizationRecord.from_json(record_json) if record_json else None
    names, mse, rel_err = [], [], []
    zero = _physical_zero(record) if record is not None else None
    pairs = zip(iter_batches(images_path, batch_size, split), iter_batches(reconstruction_path, batch_size))
    for (_, real, real_names), (_, rec, rec_names) in pairs:
        if rec_names != real_names:
            raise InputError(reconstruction_path, f"rows do not correspond to {images_path} ({split} split)")
        real, rec = real.astype(np.float64), rec.astype(np.float64)
        names += real_names
        mse.append(((rec - real) ** 2).reshape(len(real), -1).mean(axis=1))
        if record is not None:
            phys_real, phys_rec = record.to_physical(real), record.to_physical(np.clip(rec, -1, 1))
            # relative error is undefined where the true value is 0 (e.g. black sky in 8-bit cutouts),
            # which the float32 round trip may have turned into a tiny number
            nonzero = (phys_real != 0) & (phys_real != zero)
            rel = np.full(phys_real.shape, np.nan)
            np.divide(np.abs(phys_rec - phys_real), np.abs(phys_real), out=rel, where=nonzero)
            rel = rel.reshape(len(rel), -1)
            per_image = np.full(len(rel), np.nan)
            has = np.isfinite(rel).any(axis=1)
            per_image[has] = np.nanmedian(rel[has], axis=1)
            rel_err.append(per_image)
    if len(names) != _n_rows(images_path, split) or len(names) != _n_rows(reconstruction_path, None):
        raise InputError(reconstruction_path, f"row count differs from {images_path} ({split} split)")
    mse = np.concatenate(mse)
    table = pd.DataFrame({"name": names, "mse_normalized": mse, "psnr_db": psnr(mse)})
    if record is not None:
        unit = ",".join(u or "dimensionless" for u in record.units)
        table[f"median_relative_error_physical [{unit}]"] = np.concatenate(rel_err)
    return table


def _physical_zero(record: NormalizationRecord) -> np.ndarray:
    """(1, C, 1, 1): what a physical 0 reads after the record's float32 round trip (NaN where 0
    lies outside the record's range or domain, e.g. under log10, so that no pixel matches)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        normalized, clipped = record.to_normalized(np.zeros((1, record.source_channels, 1, 1)))
    back = record.to_physical(normalized)
    back[clipped.reshape(back.shape) | ~np.isfinite(back)] = np.nan
    return back


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
