"""Batched radial power spectra against powerbox's get_power looped over a stack of maps.

Run from the repository root, e.g.::

    PYTHONPATH=. python benchmarks/bench_power.py --n-maps 200
    PYTHONPATH=. python benchmarks/bench_power.py --n-maps 1000 --device cuda --json power.json

Every implementation measures the same maps (float32 Gaussian random fields, slope -3)
with the same bin edges (one fundamental wide, up to Nyquist) in one process, one after
the other, so the speed ratios are comparable even on a noisy machine; absolute times are
not. Each result is checked against powerbox: the maximum relative difference over all
maps and bins is printed. The torch backend runs on ``--device`` (``cpu`` by default;
``cuda`` adds a GPU run, timed including the host-to-device copy of the maps). Each runs
in float64 (the default; equal to powerbox to round-off) and in float32 (``precision``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from discoverydiff import stats


def _fields(n_maps: int, size: int, seed: int) -> np.ndarray:
    """Periodic Gaussian random fields with P(k) ~ k^-3, float32 (the dtype of tensor files)."""
    rng = np.random.default_rng(seed)
    ky = np.fft.fftfreq(size)[:, None]
    kx = np.fft.rfftfreq(size)[None, :]
    k = np.hypot(ky, kx)
    amplitude = np.where(k > 0, k, 1.0) ** -1.5
    amplitude[0, 0] = 0.0
    out = np.empty((n_maps, size, size), dtype=np.float32)
    for start in range(0, n_maps, 64):
        white = rng.standard_normal((min(64, n_maps - start), size, size))
        out[start:start + len(white)] = np.fft.irfft2(np.fft.rfft2(white) * amplitude, s=(size, size))
    return out


def _timed(fn, repeats: int):
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-maps", type=int, default=200)
    ap.add_argument("--size", type=int, default=256, help="map side in pixels")
    ap.add_argument("--boxlength", type=float, default=10.0, help="map side in length units (e.g. pc)")
    ap.add_argument("--device", default="cpu", help="torch backend device: cpu, cuda, ...")
    ap.add_argument("--repeats", type=int, default=1, help="best of this many runs per implementation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    import powerbox
    import torch

    maps = _fields(args.n_maps, args.size, args.seed)
    edges = stats.power_spectrum_bin_edges((args.size, args.size), args.boxlength)

    def run_powerbox():
        # nthreads=1: numpy's FFT (pyFFTW, when installed, would be used with None).
        return np.stack([powerbox.get_power(m.astype(np.float64), args.boxlength, bins=edges, nthreads=1).power
                         for m in maps])

    t_ref, reference = _timed(run_powerbox, args.repeats)
    results = {"powerbox_loop": {"seconds": t_ref, "max_rel_diff": 0.0}}
    runs = []
    for precision, tag in (("float64", ""), ("float32", "_f32")):
        runs += [(f"numpy_batched{tag}", {"backend": "numpy", "precision": precision}),
                 (f"torch_batched_cpu{tag}", {"backend": "torch", "device": "cpu", "precision": precision})]
        if args.device != "cpu":
            runs.append((f"torch_batched_{args.device}{tag}",
                         {"backend": "torch", "device": args.device, "precision": precision}))
            # Warm-up: CUDA context and cuFFT plans are created on the first call.
            stats.radial_power_spectrum(maps[:2], args.boxlength, bins=edges, **runs[-1][1])
    for name, options in runs:
        seconds, (_, power, _) = _timed(
            lambda o=options: stats.radial_power_spectrum(maps, args.boxlength, bins=edges, subtract_mean=False, **o),
            args.repeats)
        rel = np.max(np.abs(power / reference - 1.0))
        results[name] = {"seconds": seconds, "max_rel_diff": float(rel), "speedup_vs_powerbox": t_ref / seconds}

    print(f"{args.n_maps} maps of {args.size}x{args.size}, {edges.size - 1} k-bins, "
          f"powerbox {powerbox.__version__}, torch {torch.__version__}, {os.cpu_count()} CPU(s)")
    print(f"{'implementation':<24}{'seconds':>10}{'maps/s':>10}{'speed-up':>10}{'max rel diff':>14}")
    for name, r in results.items():
        print(f"{name:<24}{r['seconds']:>10.3f}{args.n_maps / r['seconds']:>10.1f}"
              f"{r.get('speedup_vs_powerbox', 1.0):>10.1f}{r['max_rel_diff']:>14.2e}")
    if args.json:
        payload = {"n_maps": args.n_maps, "size": args.size, "n_bins": int(edges.size - 1),
                   "repeats": args.repeats, "platform": platform.platform(), "cpu_count": os.cpu_count(),
                   "powerbox": powerbox.__version__, "torch": torch.__version__,
                   "cuda_device": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
                   "results": results}
        with open(args.json, "w") as fh:
            json.dump(payload, fh, indent=2)


if __name__ == "__main__":
    main()
