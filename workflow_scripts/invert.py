"""rule invert: one shard of the few-shot target images -> DDIM latents at t0."""

from discoverydiff.engine import invert_tensor_file
from discoverydiff.workflow import engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    model, settings, options, seed = engine_from_params(sm.params.engine, sm.input.model)
    return invert_tensor_file(model, sm.input.tensors, sm.output[0], settings, options, seed,
                              shard=tuple(sm.params.shard))


run_step(sm.log[0], step, threads=sm.threads, job=sm)
