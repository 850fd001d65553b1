"""End-to-end wall time of the embedded demo and the share of each rule.

Run from the repository root::

    .venv/bin/python benchmarks/bench_demo.py --cores 2            # a fresh run in a scratch directory
    .venv/bin/python benchmarks/bench_demo.py --summarize .        # the benchmark files of a finished run

A fresh run does what ``make demo`` does on a new checkout (``snakemake --cores N`` with
config/config.yaml, demo inputs generated, the shipped checkpoint) in a scratch working
directory, so the repository's own results/ is left alone, and times it. Every rule writes a
Snakemake benchmark file (results/**/benchmarks/*.tsv); the table sums their wall seconds per
rule. With more than one core, rules overlap, so the shares are of the summed rule time, not
of the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def rule_times(workdir: Path) -> pd.DataFrame:
    """Wall seconds, jobs and peak RSS per rule from the benchmark files under ``workdir/results``."""
    rules = sorted(_rule_names(), key=len, reverse=True)  # longest first: 'reconstruction_table' before 'reconstruct'
    rows = []
    for path in (workdir / "results").rglob("benchmarks/*.tsv"):
        rule = next((r for r in rules if path.stem == r or path.stem.startswith(r + "_")), None)
        if rule is None and path.stem.startswith("gather_"):
            rule = "gather_shards"
        bench = pd.read_csv(path, sep="\t")
        rows.append({"rule": rule or path.stem, "s": float(bench["s"].iloc[0]),
                     "max_rss_mb": pd.to_numeric(bench["max_rss"], errors="coerce").iloc[0]})
    if not rows:
        raise SystemExit(f"no benchmark files under {workdir / 'results'}")
    table = pd.DataFrame(rows).groupby("rule").agg(jobs=("s", "size"), seconds=("s", "sum"),
                                                  max_rss_mb=("max_rss_mb", "max"))
    table["share"] = table["seconds"] / table["seconds"].sum()
    return table.sort_values("seconds", ascending=False)


def _rule_names() -> list[str]:
    names = []
    for smk in (REPO / "rules").glob("*.smk"):
        names += [line.split()[1].rstrip(":") for line in smk.read_text().splitlines() if line.startswith("rule ")]
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--workdir", default=None, help="scratch working directory (default: a new temporary one)")
    ap.add_argument("--summarize", default=None, help="only summarize the benchmark files of this finished run")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    wall = None
    if args.summarize:
        workdir = Path(args.summarize)
    else:
        workdir = Path(args.workdir or tempfile.mkdtemp(prefix="discoverydiff-demo-"))
        (workdir / "resources").mkdir(parents=True, exist_ok=True)
        models = workdir / "resources" / "models"
        if not models.exists():
            models.symlink_to(REPO / "resources" / "models")
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(REPO / "config" / "config.yaml"), "--cores", str(args.cores),
               "--workflow-profile", str(REPO / "profiles" / "default")]
        start = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if run.returncode != 0:
            raise SystemExit(f"the demo failed after {wall:.0f} s:\n{run.stderr[-4000:]}")
    table = rule_times(workdir)
    print(f"demo in {workdir}; {os.cpu_count()} CPUs, --cores {args.cores}")
    if wall is not None:
        print(f"wall time {wall:.0f} s ({wall / 60:.1f} min); summed rule time {table['seconds'].sum():.0f} s")
    print(table.to_string(float_format=lambda v: f"{v:.2f}"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": platform.platform(), "cores": args.cores, "wall_s": wall,
                       "rules": table.reset_index().to_dict(orient="records")}, fh, indent=2)


if __name__ == "__main__":
    main()
