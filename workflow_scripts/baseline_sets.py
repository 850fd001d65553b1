"""rule baseline_sets: the fine-tuned baseline's draws -> baseline_samples (the first n) and baseline_selected."""

from discoverydiff.evaluation.controls import baseline_sets
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    return baseline_sets(sm.input.candidates, sm.input.tensors, sm.output.samples, sm.output.selected,
                         sm.output.screening, int(sm.params.n_samples), sm.params.screen, seed=sm.params.seed)


run_step(sm.log[0], step, threads=sm.threads)
