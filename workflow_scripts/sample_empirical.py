"""rule sample_empirical: the few-shot set's optimal denoiser sampled from the base samples' noise."""

from discoverydiff.baseline import sample_empirical
from discoverydiff.workflow import engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    model, settings, options, seed = engine_from_params(sm.params.engine, sm.input.model)
    return sample_empirical(model, sm.input.tensors, sm.output[0], settings, options, int(sm.params.n_samples), seed)


run_step(sm.log[0], step, threads=sm.threads)
