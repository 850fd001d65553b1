"""rule unscreened_latents: a random draw of discovery's accepted candidates, before screening (a control)."""

from discoverydiff.evaluation.controls import unscreened_latents
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)
run_step(sm.log[0], lambda: unscreened_latents(sm.input[0], sm.output[0], int(sm.params.n_samples), sm.params.seed))
