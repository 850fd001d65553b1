"""rule reconstruct: one shard of the target latents -> regenerated images."""

from discoverydiff.engine import generate_tensor_file
from discoverydiff.workflow import engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    model, settings, options, seed = engine_from_params(sm.params.engine, sm.input.model)
    generate_tensor_file(model, sm.input.latents, sm.output[0], settings, options, seed, kind="reconstruction",
                         shard=tuple(sm.params.shard))


run_step(sm.log[0], step, threads=sm.threads, job=sm)
