"""rule sample_base: one shard of the unconditional base-model samples and their inversion (ID latents)."""

from discoverydiff.engine import sample_base_model
from discoverydiff.workflow import engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    model, settings, options, seed = engine_from_params(sm.params.engine, sm.input.model)
    n = int(sm.params.engine["diffusion"]["n_base_samples"])
    return sample_base_model(model, sm.output.samples, sm.output.latents, n, settings, options, seed,
                             shard=tuple(sm.params.shard), source="results/base_model/samples.h5")


run_step(sm.log[0], step, threads=sm.threads, job=sm)
