"""rule finetune: the baseline, fine-tune the base model on the few-shot images and sample it."""

from discoverydiff.baseline import finetune_and_sample
from discoverydiff.workflow import engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    model, settings, options, seed = engine_from_params(sm.params.engine, sm.input.model)
    return finetune_and_sample(model, sm.input.tensors, sm.output[0], settings, options, sm.params.baseline,
                               int(sm.params.n_samples), seed)


run_step(sm.log[0], step, threads=sm.threads, job=sm)
