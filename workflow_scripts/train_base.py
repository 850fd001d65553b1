"""rule train_base: train a small diffusers UNet on the source images (the base model)."""

from discoverydiff.training import train_base_model
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)
run_step(sm.log[0], lambda: train_base_model(sm.params.model, sm.output[0], seed=sm.params.seed,
                                             device=sm.params.device, precision=sm.params.precision),
         threads=sm.threads, job=sm)
