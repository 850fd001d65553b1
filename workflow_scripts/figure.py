"""rule figure: one paper figure of one dataset (PDF, PNG and its data sidecar) from the results."""

from pathlib import Path

from discoverydiff.plots import make_figure
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    sets = {name: path for name, path in sm.input.items() if name in ("samples", "base_samples", "baseline_samples")}
    files = make_figure(sm.wildcards.figure, Path(sm.input.tensors).parent, "results/base_model",
                        Path(sm.output.pdf).parent, sm.params.kind, sm.params.stats, sets=sets)
    expected = {Path(sm.output.pdf), Path(sm.output.png), Path(sm.output.data)}
    if {Path(f) for f in files} != expected:
        raise RuntimeError(f"figure {sm.wildcards.figure} wrote {files}, expected {sorted(map(str, expected))}")


run_step(sm.log[0], step, threads=sm.threads)
