"""rule stats: every set of a dataset against its test maps -> comparison, two-sample, selection, spectra, novelty."""

from discoverydiff.stats import dataset_statistics
from discoverydiff.store import write_csv_atomic
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    prefix = "morphology_"
    sets = {name: path for name, path in sm.input.items()
            if name not in ("tensors", "empirical") and not name.startswith(prefix)}
    morphology = {name[len(prefix):]: path for name, path in sm.input.items() if name.startswith(prefix)}
    result = dataset_statistics(sm.input.tensors, sets, sm.params.kind, {**sm.params.stats, "seed": sm.params.seed},
                                morphology_paths=morphology, empirical_path=sm.input.get("empirical"),
                                n_samples=int(sm.params.n_samples))
    write_csv_atomic(result.comparison, sm.output.comparison)
    write_csv_atomic(result.two_sample, sm.output.two_sample)
    write_csv_atomic(result.selection, sm.output.selection)
    write_csv_atomic(result.spectra, sm.output.spectra)
    write_csv_atomic(result.novelty, sm.output.novelty)


run_step(sm.log[0], step, threads=sm.threads)
