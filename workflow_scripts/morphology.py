"""rule morphology: statmorph measurements of one set of a galaxy dataset, one row per galaxy."""

import logging

from discoverydiff.stats import morphology_of_set
from discoverydiff.store import write_csv_atomic
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    samples = sm.input.get("samples")
    table = morphology_of_set(sm.input.tensors, sm.wildcards.set, samples, sm.params.settings)
    write_csv_atomic(table, sm.output[0])
    logging.getLogger("discoverydiff.morphology").info(
        "%s/%s: %d galaxies, %d failed fits", sm.wildcards.dataset, sm.wildcards.set, len(table),
        int(table["failed"].sum()))


run_step(sm.log[0], step, threads=sm.threads)
