"""rule compute: what each compared set cost (UNet forwards, training steps, seconds) -> compute.csv."""

from pathlib import Path

from discoverydiff.evaluation.compute import compute_table
from discoverydiff.store import write_csv_atomic
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    results = Path(sm.input.latents).parent
    table = compute_table(results, "results/base_model", sm.params.sets, int(sm.params.n_samples))
    write_csv_atomic(table, sm.output[0])


run_step(sm.log[0], step)
