"""The paper's config pair end to end at 256x256 on this machine, with tiny step counts: per-rule needs.

Run from the repository root (hours on 2 CPU cores; minutes on a GPU)::

    .venv/bin/python benchmarks/bench_paper.py --work /tmp/paper --cores 2
    .venv/bin/python benchmarks/bench_paper.py --work /tmp/paper --summarize   # the table again

What it does, under ``--work``:

1. writes a diffusers checkpoint of the paper's DDPM-256 UNet architecture (google/ddpm-celebahq-256:
   113.7 M parameters) with random weights (what a rule costs does not depend on the weights);
2. writes inputs of the paper's two data configs: radiation maps as FITS images and an HDF5 stack at
   ``--source-size`` px, and Galaxy Zoo 2-size JPEG cutouts (424 px) with a vote catalogue
   (``discoverydiff.demo``);
3. runs ``snakemake --cores N`` with ``config/paper/model_ddpm_celebahq.yaml``,
   ``config/paper/data_radiation.yaml`` and ``config/paper/data_galaxyzoo.yaml`` (the paths filled in),
   plus an overlay of **tiny step counts and set sizes** (``TINY`` below). Everything that sets a
   job's peak memory keeps the paper's or the schema's value: resolution 256, ``diffusion.batch_size``
   32, ``jacobian.batch`` 8 (the schema's; k + oversample = 8 so that a pass holds 8 products),
   ``baseline.batch_size`` 8;
4. reads every job's Snakemake benchmark file (wall seconds, peak RSS) and extrapolates each model
   rule to the paper's step counts and set sizes: the tiny run's time plus the model evaluations the
   paper needs beyond it, at the per-evaluation times measured here with one thread
   (``--measure``: a forward, a training pass and a Jacobian product of the DDPM-256 UNet).

The table is printed and written to ``--work/per_rule.json``: per job its threads, wall seconds,
peak memory (the job's own high-water mark from its log; Snakemake's benchmark file samples it and
can miss the peak), and for the model rules the paper's model evaluations and the extrapolated
CPU hours.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: The overlay: tiny step counts and set sizes; memory-setting values stay the paper's / the schema's.
TINY = {
    "diffusion": {"n_inv_step": 3, "n_base_samples": 4},
    "discovery": {"n_samples": 4, "screen": {"oversample": 3, "preview_steps": 2}},
    "baseline": {"steps": 2},
    # k + oversample = 8: the schema's 8 products per pass are in play (a pass holds min(batch, k + p))
    "jacobian": {"timesteps": [500], "points": 1, "k": 6, "oversample": 2, "power_iterations": 0},
    "stats": {"bootstrap": 20, "source_check": {"n_reference": 8}},
    "threads": {"numeric": 1, "morphology": 1},
}
#: What the paper runs (config/paper/*.yaml and the schema's defaults) for the extrapolation.
PAPER = {"n_inv_step": 80, "n_base_samples": 256, "n_samples": 100, "oversample": 3, "preview_steps": 10,
         "baseline_steps": 2000, "baseline_batch": 8, "jacobian": {"timesteps": 5, "points": 4, "k": 32,
                                                                  "oversample": 10, "power_iterations": 2},
         "n_fewshot": {"radiation": 50, "galaxyzoo_smooth": 100}}


def jacobian_products(k: int, oversample: int, q: int) -> int:
    """Products of one point and timestep (discoverydiff.jacobian.jacobian_singular_values with the total)."""
    return 2 * (q + 1) * (k + oversample) + max(oversample, 4)


def model_evaluations(rule: str, dataset: str | None, s: dict) -> float:
    """UNet image-forwards (training passes for finetune, products for the Jacobian) of one job of ``rule``."""
    n = s["n_inv_step"]
    few = s["n_fewshot"].get(dataset, 0) if dataset else 0
    if rule == "invert":
        return few * (n - 1)
    if rule == "reconstruct":
        return few * n
    if rule == "sample_base":
        return s["n_base_samples"] * (2 * n - 1)
    if rule == "sample_discovered":
        return s["n_samples"] * n
    if rule == "discover":
        steps = n if s["preview_steps"] == "full" else s["preview_steps"]
        return (s["oversample"] * s["n_samples"] + few) * steps
    if rule == "finetune":
        return s["n_samples"] * n  # plus the training passes (train_passes)
    if rule in ("jacobian", "jacobian_in_domain"):
        j = s["jacobian"]
        return j["timesteps"] * j["points"] * jacobian_products(j["k"], j["oversample"], j["power_iterations"])
    return 0.0


def write_inputs(work: Path, source_size: int, n_maps: int, n_galaxies: int) -> dict:
    """The checkpoint and the input files; returns the paths the config overlay fills in."""
    import torch
    from diffusers import UNet2DModel

    from discoverydiff.demo import write_galaxy_demo, write_radiation_demo

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_unet256 import DDPM_256

    model_dir = work / "ddpm256-random"
    if not (model_dir / "config.json").exists():
        torch.manual_seed(0)
        UNet2DModel(**DDPM_256).save_pretrained(model_dir)
        (model_dir / "scheduler_config.json").write_text(json.dumps({
            "_class_name": "DDPMScheduler", "beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02,
            "num_train_timesteps": 1000, "prediction_type": "epsilon"}))
    if not (work / "radiation" / "manifest.json").exists():
        write_radiation_demo(work / "radiation", n_fits=n_maps, n_hdf5=n_maps, size=source_size, slope=-3.3,
                             n_stars=3, seed=0)
    if not (work / "galaxies" / "manifest.json").exists():
        write_galaxy_demo(work / "galaxies", n=n_galaxies, size=424, seed=0)
    return {"model": str(model_dir), "fits": str(work / "radiation" / "fits" / "*.fits"),
            "stack": str(work / "radiation" / "stack.h5"), "jpegs": str(work / "galaxies" / "images" / "*.jpg"),
            "catalogue": str(work / "galaxies" / "catalogue.csv")}


def write_configs(work: Path, paths: dict, n_fewshot: int, n_validation: int) -> list[Path]:
    import yaml

    paper = REPO / "config" / "paper"
    model = yaml.safe_load((paper / "model_ddpm_celebahq.yaml").read_text())
    model["model"]["path"] = paths["model"]
    model["diffusion"]["compile"] = False  # no compiler on this CPU machine's path; GPUs: as shipped
    radiation = yaml.safe_load((paper / "data_radiation.yaml").read_text())
    entry = radiation["datasets"]["radiation"]
    entry["inputs"][0]["pattern"], entry["inputs"][1]["pattern"] = paths["fits"], paths["stack"]
    entry["n_fewshot"], entry["n_validation"] = n_fewshot, n_validation
    galaxies = yaml.safe_load((paper / "data_galaxyzoo.yaml").read_text())
    entry = galaxies["datasets"]["galaxyzoo_smooth"]
    entry["inputs"][0]["pattern"], entry["catalogue"]["path"] = paths["jpegs"], paths["catalogue"]
    entry["catalogue"]["query"] = "`Class1.1` >= 0"  # synthetic votes: keep every galaxy
    entry["n_fewshot"], entry["n_validation"] = n_fewshot, n_validation
    files = []
    for name, content in (("model.yaml", model), ("data_radiation.yaml", radiation),
                          ("data_galaxyzoo.yaml", galaxies), ("tiny.yaml", TINY)):
        path = work / name
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        files.append(path)
    return files


def run_workflow(work: Path, configs: list[Path], cores: int, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(work / "run"),
           "--configfile", *map(str, configs), "--cores", str(cores), "--keep-going", *extra]
    (work / "run").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    start = time.perf_counter()
    with open(work / "snakemake.log", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    wall = time.perf_counter() - start
    print(f"snakemake exited {proc.returncode} after {wall:.0f} s (log: {work / 'snakemake.log'})")
    return wall


def measure_unit_costs(threads: int = 1) -> dict:
    """Seconds of one DDPM-256 image-forward, training pass and Jacobian product on ``threads`` threads."""
    import torch
    from diffusers import UNet2DModel
    from torch.func import jvp, vjp
    from torch.nn.attention import SDPBackend, sdpa_kernel

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_unet256 import DDPM_256

    from discoverydiff.diffusion import linear_betas, prepare_eps_fn
    from discoverydiff.jacobian import x0_denoiser
    from discoverydiff.models import EpsModel

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = EpsModel(UNet2DModel(**DDPM_256), linear_betas(), "ddpm256", 3, 256).eval()
    eps = prepare_eps_fn(model, torch.device("cpu"))
    x, t = torch.randn(2, 3, 256, 256), torch.full((2,), 500)
    with torch.no_grad():
        eps(x, t)
        start = time.perf_counter()
        eps(x, t)
        forward = (time.perf_counter() - start) / 2
    model.train()
    start = time.perf_counter()
    model(x, t).pow(2).mean().backward()
    train = (time.perf_counter() - start) / 2
    model.zero_grad(set_to_none=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    denoise = x0_denoiser(model, 500)
    _, pullback = vjp(denoise, x)  # as jacobian_singular_values: one vjp per point, then products
    start = time.perf_counter()
    with sdpa_kernel(SDPBackend.MATH):
        jvp(denoise, (x,), (torch.randn_like(x),))
    pullback(torch.randn_like(x))
    product = (time.perf_counter() - start) / 4  # two jvp and two vjp products (a batch of 2 each)
    return {"threads": threads, "forward_s": forward, "train_pass_s": train, "product_s": product}


def summarize(work: Path, units: dict | None) -> list[dict]:
    import pandas as pd
    import yaml

    run = work / "run" / "results"
    rows = []
    for tsv in sorted(run.rglob("benchmarks/*.tsv")):
        bench = pd.read_csv(tsv, sep="\t")
        group = tsv.parent.parent.name
        name = tsv.stem
        rule = next((r for r in ("jacobian_in_domain", "sample_discovered", "sample_base", "sample_empirical",
                                 "reconstruction_table", "reconstruct", "invert", "discover", "finetune",
                                 "jacobian", "ingest", "stats", "morphology", "to_physical", "figure",
                                 "gather", "source_check", "provenance", "demo_inputs")
                     if name.startswith(r)), name)
        if group == "base_model" and name == "jacobian":
            rule = "jacobian_in_domain"
        log = tsv.parent.parent / "logs" / f"{name}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        threads = re.search(r"discoverydiff: threads: (\d+)", text)
        peak = re.search(r"peak memory: (\d+) MB resident", text)
        rows.append({"rule": rule, "job": f"{group}/{name}", "dataset": None if group == "base_model" else group,
                     "seconds": float(bench["s"].iloc[0]), "max_rss_mb": float(bench["max_rss"].iloc[0]),
                     "peak_mb": float(peak.group(1)) if peak else None,
                     "threads": int(threads.group(1)) if threads else 1})
    tiny_cfg = yaml.safe_load((work / "tiny.yaml").read_text())
    n_fewshot = int(yaml.safe_load((work / "data_radiation.yaml").read_text())["datasets"]["radiation"]["n_fewshot"])
    diffusion, discovery = tiny_cfg["diffusion"], tiny_cfg["discovery"]
    tiny = {"n_inv_step": diffusion["n_inv_step"], "n_base_samples": diffusion["n_base_samples"],
            "n_samples": discovery["n_samples"], "oversample": discovery["screen"]["oversample"],
            "preview_steps": discovery["screen"]["preview_steps"],
            "baseline_steps": tiny_cfg["baseline"]["steps"], "baseline_batch": 8,
            "jacobian": {k: (len(v) if k == "timesteps" else v) for k, v in tiny_cfg["jacobian"].items()},
            "n_fewshot": {"radiation": n_fewshot, "galaxyzoo_smooth": n_fewshot}}
    for row in rows:
        rule, dataset = row["rule"], row["dataset"]
        if units is None or rule not in ("invert", "reconstruct", "sample_base", "sample_discovered", "discover",
                                         "finetune", "jacobian", "jacobian_in_domain"):
            row["paper_cpu_hours"] = None
            continue
        costs = units[str(min(row["threads"], 2))]
        unit = costs["product_s"] if rule.startswith("jacobian") else costs["forward_s"]
        extra = (model_evaluations(rule, dataset, PAPER) - model_evaluations(rule, dataset, tiny)) * unit
        if rule == "finetune":
            extra += (PAPER["baseline_steps"] * PAPER["baseline_batch"]
                      - tiny["baseline_steps"] * tiny["baseline_batch"]) * costs["train_pass_s"]
        row["paper_cpu_hours"] = (row["seconds"] + extra) / 3600
        row["paper_evaluations"] = model_evaluations(rule, dataset, PAPER)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/paper256"))
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--source-size", type=int, default=300, help="side of the synthetic radiation maps")
    ap.add_argument("--maps", type=int, default=12, help="FITS maps and HDF5 maps each")
    ap.add_argument("--galaxies", type=int, default=24)
    ap.add_argument("--n-fewshot", type=int, default=6)
    ap.add_argument("--n-validation", type=int, default=6, help="the rest of the maps are the test maps")
    ap.add_argument("--summarize", action="store_true", help="only read the benchmark files of an earlier run")
    ap.add_argument("--measure", action="store_true", help="also time a forward / training pass / Jacobian product")
    ap.add_argument("--snakemake-args", nargs=argparse.REMAINDER, default=[])
    args = ap.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    if not args.summarize:
        paths = write_inputs(args.work, args.source_size, args.maps, args.galaxies)
        configs = write_configs(args.work, paths, args.n_fewshot, args.n_validation)
        wall = run_workflow(args.work, configs, args.cores, args.snakemake_args)
        (args.work / "wall.json").write_text(json.dumps({"seconds": wall, "cores": args.cores}))
    units_path = args.work / "units.json"
    if args.measure:  # at the thread counts the jobs ran with (their logs say which)
        units_path.write_text(json.dumps({str(t): measure_unit_costs(t) for t in (1, 2)}))
    units = json.loads(units_path.read_text()) if units_path.exists() else None
    rows = summarize(args.work, units)
    (args.work / "per_rule.json").write_text(json.dumps({"units": units, "rows": rows}, indent=1))
    print(f"unit costs (seconds per image-forward, training pass, Jacobian product, by threads): {units}")
    print(f"{'job':<44} {'threads':>7} {'seconds':>9} {'peak MB':>8} {'bench MB':>9} {'paper evals':>11} "
          f"{'paper CPU h':>11}")
    for r in sorted(rows, key=lambda r: r["job"]):
        hours = "" if r.get("paper_cpu_hours") is None else f"{r['paper_cpu_hours']:.1f}"
        peak = "" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        evals = f"{r['paper_evaluations']:.0f}" if r.get("paper_evaluations") else ""
        print(f"{r['job']:<44} {r['threads']:>7} {r['seconds']:>9.1f} {peak:>8} {r['max_rss_mb']:>9.0f} "
              f"{evals:>11} {hours:>11}")


if __name__ == "__main__":
    main()
