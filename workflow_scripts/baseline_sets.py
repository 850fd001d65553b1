"""rule baseline_sets: the fine-tuned baseline's draws -> baseline_samples (the first n) and baseline_selected
(the n that the discovered set's selection keeps)."""

from discoverydiff.evaluation.controls import baseline_sets
from discoverydiff.workflow import discovery_section, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    screen = discovery_section(sm.params.discovery, sm.input.get("settings"))["screen"]
    return baseline_sets(sm.input.candidates, sm.input.tensors, sm.output.samples, sm.output.selected,
                         sm.output.screening, int(sm.params.n_samples), screen, seed=sm.params.seed)


run_step(sm.log[0], step, threads=sm.threads)
