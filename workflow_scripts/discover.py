"""rule discover (and discover_prior): inverted targets + ID latents -> accepted new latents, geometry and
screening tables, with the settings of rule settings where the dataset's are searched."""

from discoverydiff.discovery import discover_from_files, screen_oversample
from discoverydiff.discovery.search import calibrate_spectrum
from discoverydiff.workflow import discovery_section, engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    cfg = discovery_section(sm.params.discovery, sm.input.get("settings"))
    if sm.params.get("control") == "discovered_prior":
        from discoverydiff.evaluation.controls import prior_config

        cfg = prior_config(cfg)
    calibrate = calibrate_spectrum(cfg, sm.params.kind)  # the decoder's spectral tilt is measured on decodes
    model = options = None
    if screen_oversample(cfg) > 1 or calibrate:  # previews and decodes need the model
        model, _, options, _ = engine_from_params(sm.params.engine, sm.input.model)
    return discover_from_files(sm.input.latents, sm.input.id_latents, sm.output.latents, sm.output.geometry, cfg,
                               seed=sm.params.seed, model=model, options=options, screening_path=sm.output.screening,
                               tensors_path=sm.input.tensors, calibrate_spectrum=calibrate)


run_step(sm.log[0], step, threads=sm.threads, job=sm)
