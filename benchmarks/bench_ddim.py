"""Throughput of DDIM inversion + generation (image-forwards per second) by batch size.

Run from the repository root, e.g.::

    .venv/bin/python benchmarks/bench_ddim.py --model resources/models/demo_unet32 \\
        --n-images 32 --steps 20 --batch-sizes 1 4 16 32

All batch sizes run on the same images in one process, one after the other, so the
ratios between them are comparable even on a noisy machine; absolute numbers are not.
Each configuration also checks that its reconstructions equal the batch-1 ones.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from _common import add_run_arguments, load_unet, sync

from discoverydiff.diffusion import DDIMSettings, ddim_generate, ddim_invert, prepare_eps_fn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resources/models/demo_unet32", help="diffusers UNet2DModel directory")
    ap.add_argument("--n-images", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20, help="points in the DDIM sequence (paper: 80)")
    ap.add_argument("--t0", type=int, default=900)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16, 32])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--compile", action="store_true")
    add_run_arguments(ap)
    args = ap.parse_args()
    model, device = load_unet(args)
    eps_fn = prepare_eps_fn(model, device, args.precision, args.compile)
    settings = DDIMSettings(args.t0, args.steps)
    g = torch.Generator().manual_seed(0)
    c, r = model.channels, model.resolution
    images = torch.rand((args.n_images, c, r, r), generator=g) * 2 - 1
    forwards_per_image = (args.steps - 1) + args.steps  # inversion + generation

    def run(batch: int) -> tuple[float, torch.Tensor]:
        outs = []
        sync(device)
        start = time.perf_counter()
        for i in range(0, args.n_images, batch):
            x = images[i:i + batch].to(device)
            z = ddim_invert(eps_fn, x, model.alpha_bar, settings)
            outs.append(ddim_generate(eps_fn, z, model.alpha_bar, settings).cpu())
        sync(device)
        return time.perf_counter() - start, torch.cat(outs)

    run(min(args.batch_sizes))  # warm-up (allocator, compile)
    rows, reference = [], None
    for batch in args.batch_sizes:
        seconds, rec = run(batch)
        reference = rec if reference is None else reference
        rows.append({"batch_size": batch, "seconds": seconds,
                     "image_forwards_per_s": args.n_images * forwards_per_image / seconds,
                     "max_abs_diff_vs_first": float((rec - reference).abs().max()),
                     "psnr_db": float(10 * torch.log10(4 / ((rec - images) ** 2).mean()))})
    base = rows[0]["image_forwards_per_s"]
    print(f"model {model.name}; {c}x{r}x{r}; {args.n_images} images x {forwards_per_image} forwards; "
          f"device {device}, {args.precision}, compile={args.compile}, threads={torch.get_num_threads()}")
    print(f"{'batch':>6} {'seconds':>9} {'img-fwd/s':>10} {'ratio':>7} {'max|diff|':>10} {'PSNR dB':>8}")
    for row in rows:
        ratio = row["image_forwards_per_s"] / base
        print(f"{row['batch_size']:>6} {row['seconds']:>9.2f} {row['image_forwards_per_s']:>10.1f} {ratio:>7.2f} "
              f"{row['max_abs_diff_vs_first']:>10.2e} {row['psnr_db']:>8.2f}")
    if args.json:
        meta = {"machine": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
                "args": vars(args), "model": model.name}
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
