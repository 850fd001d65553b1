"""Survey scale on one node: peak memory and throughput of ingest and of the statistics.

Run from the repository root, e.g.::

    .venv/bin/python benchmarks/bench_scale.py ingest --n 1000 5000 20000 --resolution 32 256
    .venv/bin/python benchmarks/bench_scale.py stats --n 500 5000 --resolution 256
    .venv/bin/python benchmarks/bench_scale.py hdf5 --n 2000 20000 --resolution 256
    .venv/bin/python benchmarks/bench_scale.py knn --n 5000 20000

ingest
    Galaxy Zoo 2-size cutouts: ``--n`` JPEGs of 424x424 with a catalogue whose query keeps
    about half (a uniform ``Class1.2`` vote and the README's ``Class1.2 > 0.5``), made once under
    ``--work`` from 64 distinct demo galaxies (``discoverydiff.demo.write_galaxy_demo``, hard-linked
    to the other names: the decoder does the same work per file). Each run is
    ``ingest_dataset`` with the demo's galaxy settings (central 207 px, Lanczos, linear 0-255)
    at ``--resolution`` in a child process.
hdf5
    One HDF5 stack of ``--n`` maps (dataset ``G0``, layout NHW, float32, 256 distinct log-normal
    fields of ``--resolution`` px repeated), ingested as the radiation configs do (log10, one
    channel) into a one-channel model's tensor file: the stack is read block by block, so the
    peak memory should not grow with ``--n``.
knn
    The k-NN recall scan of ``--n`` real against ``--n`` generated feature rows (35 features, the
    size of ``image_summary_features``; k = 3): the dense (N, M) membership booleans that
    comparison keeps today against ``discoverydiff.fidelity.knn_ball_hits``' sparse hits, each in
    its own child process, with the recall of one bootstrap draw from each.
stats
    ``--n`` sample maps (and as many held-out, 16 few-shot) of log-normal fields at
    ``--resolution``, three channels of one field (``replicate``), through
    ``discoverydiff.stats.dataset_statistics`` in a child process.

Reported per run: wall seconds, items per second and the child's peak resident memory
(``getrusage`` of that child, so the parent's and earlier runs' memory do not count).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

_BASE_GALAXIES = 64

_INGEST_CHILD = """
import json, sys
from discoverydiff.ingest import ingest_dataset
args = json.loads(sys.argv[1])
result = ingest_dataset("bench", args["cfg"], args["out"] + "/tensors.h5", args["out"] + "/rejected.csv",
                        resolution=args["resolution"], model_channels=args.get("model_channels", 3), seed=0,
                        workers=args.get("workers"))
print(json.dumps({"n_images": result.n_images, "n_rejected": result.n_rejected}))
"""

_STATS_CHILD = """
import json, sys
from discoverydiff.stats import dataset_statistics
args = json.loads(sys.argv[1])
comparison, spectra, novelty = dataset_statistics(args["tensors"], {"samples": args["samples"]}, "field",
                                                  {"bootstrap": 20})
print(json.dumps({"rows": len(comparison), "novelty_rows": len(novelty)}))
"""


def _run_child(code: str, payload: dict) -> dict:
    """Run ``code`` in a fresh interpreter; its wall time, its own peak RSS and its JSON line."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(payload)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{err[-3000:]}")
    peak_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    return {"seconds": wall, "peak_rss_mb": peak_mb, **json.loads(out.strip().splitlines()[-1])}


def make_cutouts(work: Path, n: int, seed: int = 0) -> Path:
    """``n`` GZ2-size JPEG cutouts and a catalogue under ``work/cutouts_{n}`` (made once)."""
    import pandas as pd

    from discoverydiff.demo.galaxies import write_galaxy_demo

    base = work / "base_galaxies"
    if not (base / "catalogue.csv").exists():
        write_galaxy_demo(base, _BASE_GALAXIES, 424, seed)
    out = work / f"cutouts_{n}"
    if (out / "catalogue.csv").exists():
        return out
    (out / "images").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        target = out / "images" / f"{200000 + i}.jpg"
        if not target.exists():
            os.link(base / "images" / f"{100000 + i % _BASE_GALAXIES}.jpg", target)
    votes = np.random.default_rng(seed).uniform(0, 1, n)
    pd.DataFrame({"GalaxyID": 200000 + np.arange(n), "Class1.2": votes}).to_csv(out / "catalogue.csv", index=False)
    return out


def bench_ingest(work: Path, n: int, resolution: int, workers: int | None = None) -> dict:
    cutouts = make_cutouts(work, n)
    out = work / f"ingest_{n}_{resolution}"
    out.mkdir(parents=True, exist_ok=True)
    cfg = {"kind": "galaxy", "inputs": [{"format": "image", "pattern": str(cutouts / "images" / "*.jpg")}],
           "catalogue": {"path": str(cutouts / "catalogue.csv"), "id_column": "GalaxyID",
                         "query": "`Class1.2` > 0.5"},
           "crop": {"fraction": 0.48821}, "resample": "lanczos",
           "normalize": {"transform": "linear", "lo": 0, "hi": 255}, "channels": "identity", "n_fewshot": 12}
    row = _run_child(_INGEST_CHILD, {"cfg": cfg, "out": str(out), "resolution": resolution, "workers": workers})
    for name in ("tensors.h5", "rejected.csv"):
        (out / name).unlink(missing_ok=True)
    return {"what": "ingest", "n_files": n, "resolution": resolution, **row,
            "per_s": row["n_images"] / row["seconds"], "files_per_s": n / row["seconds"]}


def make_stack(work: Path, n: int, resolution: int, seed: int = 0) -> Path:
    """An HDF5 stack ``G0`` (n, resolution, resolution) of log-normal fields in Habing, made once."""
    import h5py

    from discoverydiff.demo import gaussian_random_field

    path = work / f"stack_{n}_{resolution}.h5"
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    distinct = np.stack([np.exp(gaussian_random_field((resolution, resolution), -3.0, rng)).astype(np.float32)
                         for _ in range(256)])
    tmp = path.with_suffix(".tmp.h5")
    with h5py.File(tmp, "w") as h5:
        ds = h5.create_dataset("G0", shape=(n, resolution, resolution), dtype="float32")
        ds.attrs["units"] = "Habing"
        for start in range(0, n, 256):
            stop = min(start + 256, n)
            ds[start:stop] = distinct[: stop - start]
    tmp.rename(path)
    return path


def bench_hdf5(work: Path, n: int, resolution: int) -> dict:
    stack = make_stack(work, n, resolution)
    out = work / f"hdf5_{n}_{resolution}"
    out.mkdir(parents=True, exist_ok=True)
    cfg = {"kind": "field", "inputs": [{"format": "hdf5", "pattern": str(stack), "dataset": "G0", "layout": "NHW"}],
           "resample": "box", "normalize": {"transform": "log10", "percentiles": [0.5, 99.5]},
           "channels": "identity", "n_fewshot": 16}
    row = _run_child(_INGEST_CHILD, {"cfg": cfg, "out": str(out), "resolution": resolution, "model_channels": 1})
    for name in ("tensors.h5", "rejected.csv"):
        (out / name).unlink(missing_ok=True)
    return {"what": "hdf5", "n_files": n, "resolution": resolution, **row,
            "per_s": row["n_images"] / row["seconds"], "files_per_s": float("nan")}


_KNN_CHILD = """
import json, sys
import numpy as np
from discoverydiff.fidelity import _pairwise_distances, knn_ball_hits, knn_radii, recall_of
args = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
real, fake = rng.normal(size=(args["n"], 35)), rng.normal(size=(args["n"], 35)) + 0.1
idx = rng.integers(0, args["n"], args["n"])
if args["how"] == "dense":  # as discoverydiff.stats.comparison._knn_membership keeps it
    real_radii, set_radii = knn_radii(real, 3), knn_radii(fake, 3)
    member = np.empty((len(real), len(fake)), dtype=bool)
    for start in range(0, len(real), 1024):
        member[start:start + 1024] = _pairwise_distances(real[start:start + 1024], fake) < set_radii[None, :]
    recall = float(member[:, idx].any(axis=1).mean())
else:
    _, hits = knn_ball_hits(real, fake, 3)
    recall = recall_of(hits, idx)
print(json.dumps({"n_images": args["n"], "recall": recall}))
"""


def bench_knn(work: Path, n: int, resolution: int) -> list[dict]:
    rows = []
    for how in ("dense", "sparse"):
        row = _run_child(_KNN_CHILD, {"n": n, "how": how})
        rows.append({"what": f"knn_{how}", "n_files": n, "resolution": 0, **row, "per_s": n / row["seconds"]})
    return rows


def make_maps(work: Path, n: int, resolution: int, seed: int = 0) -> tuple[Path, Path]:
    """tensors.h5 (16 few-shot + ``n`` held-out log-normal maps) and a samples file of ``n`` maps."""
    from discoverydiff.demo import gaussian_random_field
    from discoverydiff.normalize import fit_normalization
    from discoverydiff.store import TensorFileWriter

    out = work / f"maps_{n}_{resolution}"
    tensors, samples = out / "tensors.h5", out / "samples.h5"
    if tensors.exists() and samples.exists():
        return tensors, samples
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def field(count):
        return np.stack([np.exp(gaussian_random_field((resolution, resolution), -3.0, rng))[None]
                         for _ in range(count)])

    fewshot = field(16)
    record = fit_normalization(fewshot, "log10", units=["Habing"], channel_names=["G0"], channel_mode="replicate")
    attrs = {"normalization": record.to_json(), "dataset": "bench"}
    for path, kind, rows, with_split in ((tensors, "images", 16 + n, True), (samples, "samples", n, False)):
        with TensorFileWriter(path, (rows, 3, resolution, resolution), kind, attrs) as writer:
            physical = writer.create_rows("physical", (1, resolution, resolution), "float32") if with_split else None
            clipped = writer.create_rows("clipped", (3, resolution, resolution), "uint8") if with_split else None
            start = 0
            while start < rows:
                maps = fewshot if (with_split and start == 0) else field(min(256, rows - start))
                x, mask = record.to_normalized(maps)
                writer.write(start, x, [f"map_{start + i:06d}" for i in range(len(maps))])
                if with_split:
                    physical[start:start + len(maps)] = maps
                    clipped[start:start + len(maps)] = record.to_model_channels(mask)
                start += len(maps)
            if with_split:
                writer.add_dataset("split", np.array(["fewshot"] * 16 + ["heldout"] * n, dtype=object))
    return tensors, samples


def bench_stats(work: Path, n: int, resolution: int) -> dict:
    tensors, samples = make_maps(work, n, resolution)
    row = _run_child(_STATS_CHILD, {"tensors": str(tensors), "samples": str(samples)})
    return {"what": "stats", "n_maps": n, "resolution": resolution, **row, "per_s": 2 * n / row["seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["ingest", "hdf5", "knn", "stats"])
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 5000, 20000])
    ap.add_argument("--resolution", type=int, nargs="+", default=[32, 256])
    ap.add_argument("--work", default="/tmp/discoverydiff_bench_scale", help="inputs are made here once")
    ap.add_argument("--workers", type=int, default=None, help="ingest's reader threads (default: the CPUs)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for resolution in args.resolution:
        for n in args.n:
            if args.what == "ingest":
                new = [bench_ingest(work, n, resolution, workers=args.workers)]
            elif args.what == "knn":
                new = bench_knn(work, n, resolution)
            else:
                new = [{"hdf5": bench_hdf5, "stats": bench_stats}[args.what](work, n, resolution)]
            rows.extend(new)
            for row in new:
                print(json.dumps(row), flush=True)
    print(f"\n{args.what} on {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), "
          f"python {platform.python_version()}")
    print(f"{'what':>10} {'n':>7} {'px':>5} {'items':>7} {'seconds':>8} {'items/s':>8} {'files/s':>8} "
          f"{'peak RSS MB':>12}")
    for r in rows:
        items = r.get("n_images", 2 * r.get("n_maps", 0))
        n = r.get("n_files", r.get("n_maps"))
        print(f"{r['what']:>10} {n:>7} {r['resolution']:>5} {items:>7} {r['seconds']:>8.1f} "
              f"{r['per_s']:>8.1f} {r.get('files_per_s', float('nan')):>8.1f} {r['peak_rss_mb']:>12.0f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": platform.platform(), "cpus": os.cpu_count(), "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
