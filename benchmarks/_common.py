"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import argparse
import json

import torch

from discoverydiff.diffusion import resolve_device
from discoverydiff.models import EpsModel, load_model


def add_run_arguments(ap: argparse.ArgumentParser) -> None:
    """``--threads`` and ``--json``, which every UNet benchmark takes."""
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--json", default=None, help="also write the results here")


def load_unet(args: argparse.Namespace) -> tuple[EpsModel, torch.device]:
    """Apply ``--threads``, load the diffusers UNet2DModel directory ``--model`` and resolve ``--device``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    with open(f"{args.model}/config.json") as fh:
        config = json.load(fh)
    shape = {"resolution": int(config["sample_size"]), "channels": int(config["in_channels"])}
    return load_model({"source": "diffusers", "path": args.model, **shape}), resolve_device(args.device)


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work so that wall-clock timings cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize()
