"""Per-item memory of the model rules' batched work: the table in discoverydiff/jobs.py (PER_ITEM_MB).

Run from the repository root::

    .venv/bin/python benchmarks/bench_memory.py --batch 1 2 4
    .venv/bin/python benchmarks/bench_memory.py --device cuda --batch 1 4 8   # on a GPU

For each kind of work (``eval``: a no-grad forward and its DDIM step; ``jacobian``: one Jacobian
product as rule jacobian holds it; ``train``: a forward and backward pass) and batch size, a fresh
child process builds the DDPM-256 UNet (random weights; the paper's diffusers checkpoints'
architecture), runs the work once to warm up and once measured by ``discoverydiff.memory.measure_peak_mb``
(CPU: the resident high-water mark; CUDA: torch's peak allocation). A line through the points gives
the fixed part and the part per item.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = """
import json, sys, torch
sys.path.insert(0, sys.argv[2])
from bench_unet256 import DDPM_256
from diffusers import UNet2DModel
from discoverydiff.diffusion import linear_betas, prepare_eps_fn
from discoverydiff.jacobian import _product_probe
from discoverydiff.memory import measure_peak_mb
from discoverydiff.models import EpsModel
from discoverydiff.training import default_eps_fn
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
device, b, kind = torch.device(args["device"]), args["batch"], args["kind"]
torch.manual_seed(0)
model = EpsModel(UNet2DModel(**DDPM_256), linear_betas(), "ddpm256", 3, 256)
if kind == "eval":
    eps = prepare_eps_fn(model, device)
    work = lambda: eps.probe(b, (3, 256, 256))
elif kind == "jacobian":
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    work = lambda: _product_probe(model, (3, 256, 256), device)(b)
else:
    model = model.to(device).train()
    x, t = torch.randn(b, 3, 256, 256, device=device), torch.zeros(b, dtype=torch.long, device=device)
    def work():
        default_eps_fn(model, x, t).pow(2).mean().backward()
        model.zero_grad(set_to_none=True)
work()
print(json.dumps({"kind": kind, "batch": b, "peak_mb": measure_peak_mb(work, device)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", nargs="+", default=["eval", "jacobian", "train"])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    import numpy as np

    results = {}
    for kind in args.kinds:
        points = []
        for b in args.batch:
            payload = json.dumps({"kind": kind, "batch": b, "device": args.device, "threads": args.threads})
            out = subprocess.run([sys.executable, "-c", _CHILD, payload, str(REPO / "benchmarks")], capture_output=True,
                                 text=True, cwd=REPO)
            if out.returncode:
                raise RuntimeError(out.stderr[-3000:])
            row = json.loads(out.stdout.strip().splitlines()[-1])
            points.append((b, row["peak_mb"]))
            print(json.dumps(row), flush=True)
        batches, peaks = np.array(points, dtype=float).T
        slope, intercept = np.polyfit(batches, peaks, 1) if len(points) > 1 else (peaks[0], 0.0)
        results[kind] = {"points": points, "per_item_mb": float(slope), "fixed_mb": float(intercept)}
    print(f"\nDDPM-256 UNet, 3x256x256, fp32, {args.device}, {args.threads} thread(s)")
    print(f"{'kind':<10} " + " ".join(f"{'b=' + str(b):>9}" for b in args.batch) + f" {'per item':>9} {'fixed':>7}")
    for kind, r in results.items():
        print(f"{kind:<10} " + " ".join(f"{p:>9.0f}" for _, p in r["points"])
              + f" {r['per_item_mb']:>9.0f} {r['fixed_mb']:>7.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
