"""rule discover: inverted targets + ID latents -> accepted new latents, geometry and screening tables."""

from discoverydiff.discovery import discover_from_files, screen_oversample
from discoverydiff.workflow import engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    model = options = None
    if screen_oversample(sm.params.discovery) > 1:  # previews need the model
        model, _, options, _ = engine_from_params(sm.params.engine, sm.input.model)
    return discover_from_files(sm.input.latents, sm.input.id_latents, sm.output.latents, sm.output.geometry,
                               sm.params.discovery, seed=sm.params.seed, model=model, options=options,
                               screening_path=sm.output.screening, tensors_path=sm.input.tensors)


run_step(sm.log[0], step, threads=sm.threads, job=sm)
