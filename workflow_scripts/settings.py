"""rule settings: discovery's open knobs run on the few-shot maps and measured against the validation maps
-> settings.yaml (the chosen setting, what the config fixed, every setting's numbers, the cost)."""

from pathlib import Path

import yaml

from discoverydiff.discovery.search import choose_settings
from discoverydiff.store import atomic_path
from discoverydiff.workflow import engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    model, settings, options, seed = engine_from_params(sm.params.engine, sm.input.model)
    prefix = "morphology_"
    morphology = {name[len(prefix):]: path for name, path in sm.input.items() if name.startswith(prefix)}
    record = choose_settings(sm.input.tensors, sm.input.latents, sm.input.id_latents, model, settings, options,
                             sm.params.discovery, sm.params.stats, sm.params.kind, seed=seed,
                             morphology_paths=morphology or None, workdir=Path(sm.output[0]).parent)
    with atomic_path(sm.output[0]) as tmp:
        Path(tmp).write_text(yaml.safe_dump(record, sort_keys=False))


run_step(sm.log[0], step, threads=sm.threads, job=sm)
