"""rule finetune: the baseline, fine-tune the base model on the few-shot images and sample it (n_samples draws,
or the screening's oversample times as many for the baseline_selected control)."""

from discoverydiff.baseline import finetune_and_sample
from discoverydiff.discovery import screen_oversample
from discoverydiff.workflow import discovery_section, engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    model, settings, options, seed = engine_from_params(sm.params.engine, sm.input.model)
    cfg = discovery_section(sm.params.discovery, sm.input.get("settings"))
    draws = int(sm.params.n_samples) * (screen_oversample(cfg) if sm.params.selected else 1)
    return finetune_and_sample(model, sm.input.tensors, sm.output[0], settings, options, sm.params.baseline, draws,
                               seed)


run_step(sm.log[0], step, threads=sm.threads, job=sm)
