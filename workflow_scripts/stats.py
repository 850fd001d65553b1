"""rule stats: every sample set of a dataset against its targets -> comparison.csv, power_spectra.csv."""

from discoverydiff.stats import dataset_statistics
from discoverydiff.store import write_csv_atomic
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    sets = {name: path for name, path in sm.input.items() if name != "tensors"}
    comparison, spectra = dataset_statistics(sm.input.tensors, sets, sm.params.kind, sm.params.stats)
    write_csv_atomic(comparison, sm.output.comparison)
    write_csv_atomic(spectra, sm.output.spectra)


run_step(sm.log[0], step)
