"""rule sample_discovered (and sample_control): decode one shard of discovered latents into new samples, with
the spectral calibration their discovery record holds."""

from discoverydiff.discovery import decode_discovered
from discoverydiff.workflow import engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    model, settings, options, seed = engine_from_params(sm.params.engine, sm.input.model)
    return decode_discovered(model, sm.input.latents, sm.output[0], settings, options, seed, shard=sm.params.shard)


run_step(sm.log[0], step, threads=sm.threads, job=sm)
