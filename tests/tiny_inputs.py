"""Tests' helpers: a tiny diffusers UNet as an eps-model, small log-normal G0 maps as FITS files, and the
benchmarks' scripts loaded as modules."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tiny_eps_model():
    """An 8x8, 3-channel diffusers UNet2DModel (seed 0) on the linear DDPM schedule."""
    import torch
    from diffusers import UNet2DModel

    from discoverydiff.diffusion import linear_betas
    from discoverydiff.models import EpsModel

    torch.manual_seed(0)
    net = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(16, 16),
                      layers_per_block=1, down_block_types=("DownBlock2D", "DownBlock2D"),
                      up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8)
    return EpsModel(net, linear_betas(), "diffusers:tiny", 3, 8)


def write_lognormal_fits(folder: Path, n: int, sigma: float, rng, stem: str) -> Path:
    """``n`` 16x16 float32 maps exp(N(0, sigma)) in Habing, ``folder/{stem}{i:02d}.fits``; returns ``folder``."""
    from astropy.io import fits

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        hdu = fits.PrimaryHDU(np.exp(rng.normal(0.0, sigma, (16, 16))).astype(np.float32))
        hdu.header["BUNIT"] = "Habing"
        hdu.writeto(folder / f"{stem}{i:02d}.fits")
    return folder


def benchmark_script(name: str):
    """``benchmarks/{name}.py`` loaded as a module (the benchmarks are scripts, not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
