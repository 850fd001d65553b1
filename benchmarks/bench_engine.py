"""DDIM inversion + generation: this engine against the public code's style and diffusers' schedulers.

Run from the repository root, e.g.::

    .venv/bin/python benchmarks/bench_engine.py --n-images 16 --steps 21 --batch 16
    .venv/bin/python benchmarks/bench_engine.py --device cuda --precision bf16 --compile --n-images 256 --batch 128

Three implementations invert the same images to x_t0 and generate them back, with the same
UNet, the same timesteps and deterministic DDIM (eta = 0), one after the other in one process,
so their ratios are comparable even on a noisy machine (absolute numbers are not):

reference
    The style of the public code of the paper (ermongroup/ddim's ``generalized_steps``): one
    image at a time, fp32, a Python loop that recomputes alpha-bar from the betas each step.
diffusers
    ``DDIMInverseScheduler`` + ``DDIMScheduler`` (clip_sample off, set_alpha_to_one) around the
    same ``UNet2DModel``, batched like the engine. The inverse scheduler is stepped with eps
    evaluated at the step's start (the DDIM inversion of the paper; diffusers' pipelines pass
    the end timestep instead, a different approximation).
engine
    ``discoverydiff.diffusion.prepare_eps_fn`` + ``ddim_invert`` + ``ddim_generate``, as the
    workflow's rules run them (``--precision``, ``--compile``, ``--channels-last`` as in config).

The timestep sequence is the paper's ``int(linspace(0, 1, steps) * t0)`` with
``t0 = (steps - 1) * (1000 // steps)``, the one t0 for which it is the uniform sequence that
diffusers' schedulers can step through. Every implementation's output is compared with the
engine's (max |difference|) and with the input images (reconstruction PSNR, range [-1, 1]).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time

import numpy as np
import torch
from _common import add_run_arguments, load_unet, sync

from discoverydiff.diffusion import DDIMSettings, ddim_generate, ddim_invert, prepare_eps_fn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resources/models/demo_unet32", help="diffusers UNet2DModel directory")
    ap.add_argument("--n-images", type=int, default=16)
    ap.add_argument("--steps", type=int, default=21, help="points in the DDIM sequence (e.g. 21, 41, 81)")
    ap.add_argument("--batch", type=int, default=16, help="batch of the engine and of the diffusers loop")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"], help="engine precision")
    ap.add_argument("--compile", action="store_true", help="engine: torch.compile the UNet")
    ap.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                    help="engine memory format (auto: on for convolutional models, as the workflow)")
    ap.add_argument("--reference-images", type=int, default=None,
                    help="time the one-image reference on this many images (default all) and scale")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each, interleaved; the fastest counts")
    add_run_arguments(ap)
    args = ap.parse_args()
    model, device = load_unet(args)
    n_train = len(model.betas)
    t0 = (args.steps - 1) * (n_train // args.steps)
    settings = DDIMSettings(t0, args.steps)
    seq = settings.sequence()
    if seq != list(range(0, t0 + 1, n_train // args.steps)):
        raise SystemExit(f"steps={args.steps}: the paper's sequence for t0={t0} is not uniform (float truncation): "
                         f"{seq}; choose e.g. 21, 41 or 81 steps")
    g = torch.Generator().manual_seed(0)
    c, r = model.channels, model.resolution
    # smooth images (a low-resolution field upsampled), closer to data than white noise
    low = torch.rand((args.n_images, c, r // 4, r // 4), generator=g) * 2 - 1
    images = torch.nn.functional.interpolate(low, size=(r, r), mode="bicubic", align_corners=False).clamp(-1, 1)
    forwards = (args.steps - 1) + args.steps  # inversion + generation, per image

    model = model.to(device).eval()
    channels_last = {"auto": None, "on": True, "off": False}[args.channels_last]
    # on its own copy: channels_last converts the model in place
    eps_fn = prepare_eps_fn(copy.deepcopy(model), device, args.precision, args.compile, channels_last)

    def engine(x):
        return ddim_generate(eps_fn, ddim_invert(eps_fn, x, model.alpha_bar, settings), model.alpha_bar, settings)

    runs = {
        "reference": (lambda x: _reference_style(model, x, seq), 1),
        "diffusers": (_diffusers_loop(model.net, model.betas, args.steps, model.prediction_type), args.batch),
        "engine": (engine, args.batch),
    }
    outputs, seconds = {}, {name: [] for name in runs}
    for fn, batch in runs.values():
        _run(fn, images[:batch], batch, device)  # warm-up: allocator, oneDNN primitives, compilation
    for _ in range(args.repeats):  # interleaved, so that a slow spell of the machine hits all three
        for name, (fn, batch) in runs.items():
            n = args.n_images if name != "reference" or args.reference_images is None else args.reference_images
            elapsed, outputs[name] = _run(fn, images[:n], batch, device)
            seconds[name].append(elapsed)
    rows = []
    for name, (_, batch) in runs.items():
        n = len(outputs[name])
        rows.append({"implementation": name, "batch": batch, "images_timed": n, "seconds": min(seconds[name]),
                     "image_forwards_per_s": n * forwards / min(seconds[name]), "all_seconds": seconds[name]})
    for row in rows:
        out = outputs[row["implementation"]]
        ref = outputs["engine"][: len(out)]
        row["max_abs_diff_vs_engine"] = float((out - ref).abs().max())
        row["psnr_db"] = float(10 * torch.log10(4 / ((out - images[: len(out)]) ** 2).mean()))
    speed = {row["implementation"]: row["image_forwards_per_s"] for row in rows}

    print(f"model {model.name}; {c}x{r}x{r}; {args.n_images} images; t0={t0}, {args.steps} steps "
          f"({forwards} forwards per image); device {device}, engine {args.precision}, compile={args.compile}, "
          f"channels_last={args.channels_last}; threads {torch.get_num_threads()}")
    print(f"{'implementation':>15} {'batch':>6} {'images':>7} {'seconds':>9} {'img-fwd/s':>10} "
          f"{'max|diff|':>10} {'PSNR dB':>8}")
    for row in rows:
        print(f"{row['implementation']:>15} {row['batch']:>6} {row['images_timed']:>7} {row['seconds']:>9.2f} "
              f"{row['image_forwards_per_s']:>10.1f} {row['max_abs_diff_vs_engine']:>10.2e} {row['psnr_db']:>8.2f}")
    ratios = {"engine/reference": speed["engine"] / speed["reference"],
              "engine/diffusers": speed["engine"] / speed["diffusers"]}
    print("ratios: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    if args.json:
        meta = {"machine": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
                "device": str(device), "args": vars(args), "model": model.name, "t0": t0}
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows, "ratios": ratios}, fh, indent=2)


def _run(fn, images: torch.Tensor, batch: int, device: torch.device) -> tuple[float, torch.Tensor]:
    outs = []
    sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(images), batch):
            outs.append(fn(images[i:i + batch].to(device)).float().cpu())
    sync(device)
    return time.perf_counter() - start, torch.cat(outs)


def _reference_style(model, x: torch.Tensor, seq: list[int]) -> torch.Tensor:
    """One image, fp32, alpha-bar recomputed per step from the betas with t = -1 meaning 'clean'."""
    b = torch.cat([torch.zeros(1), torch.from_numpy(model.betas).float()]).to(x.device)

    def compute_alpha(t):
        return (1 - b).cumprod(dim=0).index_select(0, t.long() + 1).view(-1, 1, 1, 1)

    def step(x, t, t_next):
        ones = torch.ones(x.size(0), device=x.device)
        at, at_next = compute_alpha(ones * t), compute_alpha(ones * t_next)
        et = model(x, (ones * t).long())
        x0_t = (x - et * (1 - at).sqrt()) / at.sqrt()
        return at_next.sqrt() * x0_t + (1 - at_next).sqrt() * et

    for t, t_next in zip(seq[:-1], seq[1:]):  # inversion
        x = step(x, t, t_next)
    for t, t_next in zip(reversed(seq), reversed([-1] + seq[:-1])):  # generation
        x = step(x, t, t_next)
    return x


def _diffusers_loop(unet, betas: np.ndarray, steps: int, prediction_type: str):
    """diffusers' DDIM schedulers driving the raw UNet; they convert its output (eps, v or x0) themselves."""
    from diffusers import DDIMInverseScheduler, DDIMScheduler

    common = {"num_train_timesteps": len(betas), "trained_betas": betas.tolist(), "clip_sample": False,
              "set_alpha_to_one": True, "steps_offset": 0, "timestep_spacing": "leading",
              "prediction_type": prediction_type}
    forward, inverse = DDIMScheduler(**common), DDIMInverseScheduler(**common)
    forward.set_timesteps(steps)
    inverse.set_timesteps(steps)
    stride = len(betas) // steps

    def run(x):
        for t in inverse.timesteps[1:]:  # 0 -> stride -> ... -> t0, eps at the step's start
            eps = unet(x, t - stride).sample
            x = inverse.step(eps, t, x).prev_sample
        for t in forward.timesteps:  # t0 -> ... -> 0 -> clean
            eps = unet(x, t).sample
            x = forward.step(eps, t, x, eta=0.0).prev_sample
        return x

    return run


if __name__ == "__main__":
    main()
