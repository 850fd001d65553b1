"""rule discover: inverted targets + ID latents -> accepted new latents + geometry table."""

from discoverydiff.discovery import discover_from_files
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)
run_step(sm.log[0], lambda: discover_from_files(sm.input.latents, sm.input.id_latents, sm.output.latents,
                                                sm.output.geometry, sm.params.discovery, seed=sm.params.seed),
         threads=sm.threads)
