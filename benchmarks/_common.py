"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import json

import torch


def model_shape(path: str) -> dict:
    """Resolution and channels of a diffusers UNet2DModel directory, for ``load_model``."""
    with open(f"{path}/config.json") as fh:
        config = json.load(fh)
    return {"resolution": int(config["sample_size"]), "channels": int(config["in_channels"])}


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work so that wall-clock timings cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize()
