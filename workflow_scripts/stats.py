"""rule stats: every sample set of a dataset against its targets -> comparison.csv, power_spectra.csv, novelty.csv."""

from discoverydiff.stats import dataset_statistics
from discoverydiff.store import write_csv_atomic
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    prefix = "morphology_"
    sets = {name: path for name, path in sm.input.items()
            if name not in ("tensors", "empirical") and not name.startswith(prefix)}
    morphology = {name[len(prefix):]: path for name, path in sm.input.items() if name.startswith(prefix)}
    comparison, spectra, novelty = dataset_statistics(sm.input.tensors, sets, sm.params.kind,
                                                      {**sm.params.stats, "seed": sm.params.seed},
                                                      morphology_paths=morphology,
                                                      empirical_path=sm.input.get("empirical"))
    write_csv_atomic(comparison, sm.output.comparison)
    write_csv_atomic(spectra, sm.output.spectra)
    write_csv_atomic(novelty, sm.output.novelty)


run_step(sm.log[0], step, threads=sm.threads)
