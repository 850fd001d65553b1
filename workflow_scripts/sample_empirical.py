"""rule sample_empirical: the few-shot set's optimal denoiser sampled from the base samples' noise."""

from discoverydiff.baseline import sample_empirical
from discoverydiff.models import load_schedule
from discoverydiff.workflow import model_config, run_settings, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    # the closed-form denoiser needs the base model's schedule, not its network
    params = sm.params.engine
    schedule = load_schedule(model_config(params, sm.input.model), seed=int(params["seed"]))
    settings, options = run_settings(params)
    return sample_empirical(schedule, sm.input.tensors, sm.output[0], settings, options, int(sm.params.n_samples),
                            int(params["seed"]))


run_step(sm.log[0], step, threads=sm.threads, job=sm)
