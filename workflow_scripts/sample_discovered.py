"""rule sample_discovered: decode one shard of the discovered latents into new target-domain samples."""

from discoverydiff.engine import generate_tensor_file
from discoverydiff.workflow import engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    model, settings, options, seed = engine_from_params(sm.params.engine, sm.input.model)
    return generate_tensor_file(model, sm.input.latents, sm.output[0], settings, options, seed, kind="samples",
                                shard=tuple(sm.params.shard))


run_step(sm.log[0], step, threads=sm.threads, job=sm)
