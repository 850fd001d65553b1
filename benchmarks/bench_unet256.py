"""Image-forwards per second of the paper's 256x256 DDPM UNet, and the fraction of the GPU's peak.

Run from the repository root on a GPU machine, e.g.::

    .venv/bin/python benchmarks/bench_unet256.py --batch 64 128 --precision bf16 --compile
    .venv/bin/python benchmarks/bench_unet256.py --device cpu --batch 1 --iters 1   # a smoke run

The UNet is the architecture of the diffusers checkpoints google/ddpm-celebahq-256 (and church,
bedroom, cat): block_out_channels (128, 128, 256, 256, 512, 512), two ResNet blocks per level,
attention at 16x16; random weights (throughput does not depend on them). Each configuration runs
``eps_fn`` of ``discoverydiff.diffusion.prepare_eps_fn`` (autocast, channels_last, torch.compile)
as the workflow's rules do. FLOPs per forward are counted by torch.utils.flop_counter (a
multiply-add counts 2); the fraction of peak uses ``--peak-tflops`` (default: H100 SXM dense
peaks, 989 TFLOP/s for bf16/fp16 and 67 for fp32).
Also reported: eps of the fast configuration against fp32 eager on the same inputs.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from _common import sync
from diffusers import UNet2DModel

from discoverydiff.diffusion import linear_betas, prepare_eps_fn, resolve_device
from discoverydiff.models import EpsModel

DDPM_256 = {
    "sample_size": 256, "in_channels": 3, "out_channels": 3, "layers_per_block": 2,
    "block_out_channels": (128, 128, 256, 256, 512, 512),
    "down_block_types": ("DownBlock2D", "DownBlock2D", "DownBlock2D", "DownBlock2D", "AttnDownBlock2D",
                         "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"),
    "downsample_padding": 0, "flip_sin_to_cos": False, "freq_shift": 1, "norm_eps": 1e-6,
    "norm_num_groups": 32, "attention_head_dim": None, "act_fn": "silu", "time_embedding_type": "positional",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--compile-mode", default=None,
                    choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
                    help="torch.compile mode (with --compile; default: the workflow's, torch's default)")
    ap.add_argument("--cast", choices=["autocast", "weights"], default="autocast",
                    help="autocast: fp32 weights under torch.autocast, as the workflow runs (GroupNorm and "
                         "softmax in fp32); weights: the whole model and its inputs in the precision")
    ap.add_argument("--iters", type=int, default=10, help="timed forwards per batch size")
    ap.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                    help="NHWC model and inputs (auto: on, as the workflow does for convolutional models)")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="dense peak of the precision (default: H100 SXM, 989 for bf16/fp16, 67 for fp32)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="also profile N forwards at the last batch size: the GPU's kernel time by kind")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    if args.peak_tflops is None:
        args.peak_tflops = 67.0 if args.precision == "fp32" else 989.0
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = EpsModel(UNet2DModel(**DDPM_256), linear_betas(), "ddpm-celebahq-256 architecture, random weights",
                     3, 256).eval()
    n_params = sum(p.numel() for p in model.parameters())
    flops = _flops_per_forward(model)
    eager = prepare_eps_fn(model, device, "fp32", compile=False, channels_last=False)
    x = torch.randn((min(args.batch), 3, 256, 256), device=device)
    t = torch.full((len(x),), 500, device=device)
    with torch.no_grad():
        reference = eager(x, t).float()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    layout = {"auto": None, "on": True, "off": False}[args.channels_last]
    if args.compile_mode is None and args.cast == "autocast":  # exactly the workflow's path
        fast = prepare_eps_fn(model, device, args.precision, compile=args.compile, channels_last=layout)
    else:
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
        net = _CastInput(model.to(dtype), dtype) if args.cast == "weights" else model
        if args.compile:
            net = torch.compile(net, mode=args.compile_mode, dynamic=False)
        precision = "fp32" if args.cast == "weights" else args.precision  # no autocast over cast weights
        fast = prepare_eps_fn(net, device, precision, compile=False, channels_last=layout)
    with torch.no_grad():
        fast_eps = fast(x, t).float()
    err = float((fast_eps - reference).pow(2).mean().sqrt() / reference.pow(2).mean().sqrt())

    rows = []
    for batch in args.batch:
        xb = torch.randn((batch, 3, 256, 256), device=device)
        tb = torch.full((batch,), 500, device=device)
        with torch.no_grad():
            for _ in range(2):  # warm-up: cuDNN autotuning, compilation for this shape
                fast(xb, tb)
            sync(device)
            start = time.perf_counter()
            for _ in range(args.iters):
                fast(xb, tb)
            sync(device)
        seconds = (time.perf_counter() - start) / args.iters
        rate = batch / seconds
        rows.append({"batch": batch, "seconds_per_forward": seconds, "image_forwards_per_s": rate,
                     "tflops": rate * flops / 1e12, "fraction_of_peak": rate * flops / 1e12 / args.peak_tflops})
    profile = _kernel_time_by_kind(fast, args.batch[-1], device, args.profile) if args.profile else None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"DDPM-256 UNet: {n_params / 1e6:.1f} M parameters, {flops / 1e9:.1f} GFLOP per forward; {name}; "
          f"{args.precision} ({args.cast}), compile={args.compile} (mode {args.compile_mode}), "
          f"channels_last={args.channels_last}; "
          f"eps vs fp32 eager: relative RMS {err:.2e}")
    print(f"{'batch':>6} {'ms/forward':>11} {'img-fwd/s':>10} {'TFLOP/s':>8} {'of peak':>8}")
    for r in rows:
        print(f"{r['batch']:>6} {1e3 * r['seconds_per_forward']:>11.1f} {r['image_forwards_per_s']:>10.1f} "
              f"{r['tflops']:>8.1f} {r['fraction_of_peak']:>8.1%}")
    if profile:
        print(f"kernel time per forward at batch {args.batch[-1]}: {profile['kernel_ms_per_forward']:.1f} ms of "
              f"{profile['wall_ms_per_forward']:.1f} ms wall")
        for kind, ms in profile["ms_per_forward"].items():
            print(f"  {kind:<24} {ms:8.1f} ms  {ms / profile['kernel_ms_per_forward']:6.1%}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": name, "torch": torch.__version__, "args": vars(args), "params": n_params,
                       "flops_per_forward": flops, "eps_relative_rms_vs_fp32": err, "rows": rows,
                       "profile": profile}, fh, indent=2)


# kernel-name fragments -> kind; the first match wins (cuDNN/CUTLASS convolution kernels are implicit GEMMs)
# (inductor names its fused Triton kernels after the ops they hold, "triton_poi_fused_convolution_...": first)
KERNEL_KINDS = (("fused elementwise/norm", ("triton_",)),
                ("attention", ("flash", "fmha", "attention")),
                ("convolution / GEMM", ("conv", "xmma", "cutlass", "gemm", "nvjet", "cudnn", "fprop", "wgrad")),
                ("other", ("",)))


def _kernel_time_by_kind(fast, batch: int, device: torch.device, n: int) -> dict:
    """Profile ``n`` forwards; the device's kernel time per forward, by kind of kernel."""
    from torch.profiler import ProfilerActivity, profile

    x, t = torch.randn((batch, 3, 256, 256), device=device), torch.full((batch,), 500, device=device)
    on_gpu = device.type == "cuda"
    with torch.no_grad():
        fast(x, t)
        sync(device)
        with profile(activities=[ProfilerActivity.CUDA if on_gpu else ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for _ in range(n):
                fast(x, t)
            sync(device)
            wall = time.perf_counter() - start
    wanted = torch.autograd.DeviceType.CUDA if on_gpu else torch.autograd.DeviceType.CPU
    totals = {kind: 0.0 for kind, _ in KERNEL_KINDS}
    for event in prof.key_averages():
        if event.device_type != wanted:
            continue
        us = event.self_device_time_total if on_gpu else event.self_cpu_time_total
        name = event.key.lower()
        kind = next(k for k, fragments in KERNEL_KINDS if any(f in name for f in fragments))
        totals[kind] += us / 1e3 / n
    return {"batch": batch, "forwards": n, "wall_ms_per_forward": 1e3 * wall / n,
            "kernel_ms_per_forward": sum(totals.values()), "ms_per_forward": totals}


class _CastInput(torch.nn.Module):
    """Feed a model whose weights were cast to ``dtype`` inputs of that dtype (timesteps stay integers)."""

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.dtype), t)


def _flops_per_forward(model) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    x, t = torch.randn((1, 3, 256, 256)), torch.full((1,), 500)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, t)
    return int(counter.get_total_flops())


if __name__ == "__main__":
    main()
