"""rule novelty_sweep: discovery at every value of its novelty knob, decoded and measured against the
validation maps -> novelty_sweep.csv."""

from pathlib import Path

from discoverydiff.discovery.sweep import novelty_fidelity_sweep
from discoverydiff.store import write_csv_atomic
from discoverydiff.workflow import discovery_section, engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    model, settings, options, seed = engine_from_params(sm.params.engine, sm.input.model)
    sweep = dict(sm.params.stats.get("novelty_sweep") or {})
    results = Path(sm.input.tensors).parent
    morphology = None
    if sm.params.kind == "galaxy":
        morphology = {name: results / "morphology" / f"{name}.csv" for name in ("fewshot", "validation")}
    references = {Path(path).stem: path for path in sm.input.references if str(path).endswith(".h5")}
    references = {("base_samples" if name == "samples" else name): path for name, path in references.items()}
    table = novelty_fidelity_sweep(sm.input.tensors, sm.input.latents, sm.input.id_latents, model, settings,
                                   options, discovery_section(sm.params.discovery, sm.input.get("settings")),
                                   sm.params.stats, sm.params.kind,
                                   knob=sweep.get("knob", "min_weight"),
                                   values=sweep.get("values", [0.05, 0.15, 0.25, 0.35, 0.45]),
                                   n_samples=int(sweep.get("n_samples", 16)), seed=seed, morphology_paths=morphology,
                                   reference_sets=references)
    write_csv_atomic(table, sm.output[0])


run_step(sm.log[0], step, threads=sm.threads, job=sm)
