"""rule seeds: discovery, the baselines and the controls under every seed of evaluation.seeds -> seeds.csv
(every statistic per seed) and seeds_summary.csv (paired differences to the discovered set over seeds)."""

from pathlib import Path

from discoverydiff.evaluation.seeds import seed_table, summarize_seeds
from discoverydiff.store import write_csv_atomic
from discoverydiff.workflow import discovery_section, engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    model, settings, options, _ = engine_from_params(sm.params.engine, sm.input.model)
    prefix = "morphology_"
    morphology = {name[len(prefix):]: path for name, path in sm.input.items() if name.startswith(prefix)}
    cfg = discovery_section(sm.params.discovery, sm.input.get("settings"))
    table = seed_table(sm.input.tensors, sm.input.latents, sm.input.id_latents, model, settings, options,
                       cfg, sm.params.baseline, sm.params.stats, sm.params.kind, sm.params.seeds,
                       sm.params.controls, int(sm.params.n_samples), morphology_paths=morphology,
                       workdir=Path(sm.output.seeds).parent)
    write_csv_atomic(table, sm.output.seeds)
    write_csv_atomic(summarize_seeds(table), sm.output.summary)


run_step(sm.log[0], step, threads=sm.threads, job=sm)
