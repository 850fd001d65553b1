"""Cost of the Jacobian spectrum (rule ``jacobian``): seconds per point and noise level.

Run from the repository root, e.g.::

    .venv/bin/python benchmarks/bench_jacobian.py                       # the demo UNet, 3x32x32
    .venv/bin/python benchmarks/bench_jacobian.py --model ddpm256 --device cuda --batch 16

``--model`` is a diffusers UNet2DModel directory, or ``ddpm256`` for the architecture of
google/ddpm-celebahq-256 with random weights (the cost does not depend on the weights; the
ranks then mean nothing). For each timestep the x0-denoiser's top ``--k`` singular values come
from ``discoverydiff.jacobian.jacobian_singular_values`` at ``--points`` random points; the cost
is ``2 (q + 1) (k + p)`` Jacobian products per point (q power iterations, p oversampling),
each a forward-mode (jvp) or reverse-mode (vjp) pass, ``--batch`` of them per pass.
Reported: seconds per point, products per second, numerical rank (99% of the squared
spectrum), the largest singular value and, on CUDA, the peak memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from _common import add_run_arguments, load_unet, sync

from discoverydiff.diffusion import linear_betas, resolve_device
from discoverydiff.jacobian import jacobian_singular_values, numerical_rank, x0_denoiser
from discoverydiff.models import EpsModel


def _ddpm256() -> EpsModel:
    from bench_unet256 import DDPM_256
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return EpsModel(UNet2DModel(**DDPM_256), linear_betas(), "ddpm-celebahq-256 architecture, random weights", 3, 256)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resources/models/demo_unet32", help="UNet2DModel directory or 'ddpm256'")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--t", type=int, nargs="+", default=[100, 500, 900], help="timesteps")
    ap.add_argument("--k", type=int, default=32, help="singular values kept")
    ap.add_argument("--oversample", type=int, default=10)
    ap.add_argument("--power-iterations", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8, help="Jacobian products per pass")
    ap.add_argument("--points", type=int, default=1, help="points per timestep")
    add_run_arguments(ap)
    args = ap.parse_args()

    if args.model == "ddpm256":
        if args.threads:
            torch.set_num_threads(args.threads)
        model, device = _ddpm256(), resolve_device(args.device)
    else:
        model, device = load_unet(args)
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    shape = (model.channels, model.resolution, model.resolution)
    products = 2 * (args.power_iterations + 1) * (args.k + args.oversample)
    g = torch.Generator().manual_seed(0)
    rows = []
    for t in args.t:
        denoise = x0_denoiser(model, t)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        sync(device)
        start = time.perf_counter()
        ranks, top = [], []
        for _ in range(args.points):
            x = torch.randn(shape, generator=g).to(device)
            values = jacobian_singular_values(denoise, x, args.k, oversample=args.oversample,
                                              power_iterations=args.power_iterations, batch=args.batch)
            ranks.append(numerical_rank(values.cpu().numpy()))
            top.append(float(values[0]))
        sync(device)
        seconds = (time.perf_counter() - start) / args.points
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
        rows.append({"t": t, "seconds_per_point": seconds, "products_per_s": products / seconds,
                     "rank": ranks, "top_singular_value": top, "peak_gib": peak})
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"Jacobian spectrum of {model.name} ({'x'.join(map(str, shape))}) on {name}: k={args.k}, "
          f"oversample={args.oversample}, q={args.power_iterations}, {products} products per point, "
          f"batch {args.batch}, torch {torch.__version__}")
    print(f"{'t':>5} {'s/point':>9} {'products/s':>11} {'rank':>10} {'sigma_1':>8} {'peak GiB':>9}")
    for r in rows:
        print(f"{r['t']:>5} {r['seconds_per_point']:>9.2f} {r['products_per_s']:>11.1f} "
              f"{','.join(map(str, r['rank'])):>10} {r['top_singular_value'][0]:>8.3f} {r['peak_gib']:>9.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": name, "torch": torch.__version__, "args": vars(args), "shape": shape,
                       "products_per_point": products, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
