"""rule source_check: the base model's own samples against held-out images of its source domain."""

import logging

from discoverydiff.source_check import source_domain_check
from discoverydiff.store import read_tensor_file, write_csv_atomic
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    samples = read_tensor_file(sm.input.samples).x
    table = source_domain_check(samples, sm.params.model, seed=sm.params.seed,
                                n_reference=int(sm.params.check["n_reference"]), k=int(sm.params.check["k"]))
    write_csv_atomic(table, sm.output[0])
    logging.getLogger("discoverydiff.source_check").info("\n%s", table.to_string(index=False))


run_step(sm.log[0], step, threads=sm.threads)
