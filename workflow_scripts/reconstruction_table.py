"""rule reconstruction_table: per-image MSE / PSNR (normalized) and relative error in physical units."""

import logging

from discoverydiff.reconstruction import reconstruction_table
from discoverydiff.store import write_csv_atomic
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    table = reconstruction_table(sm.input.tensors, sm.input.h5)
    write_csv_atomic(table, sm.output[0])
    logging.getLogger("discoverydiff.reconstruct").info(
        "%s: %d images, mean PSNR %.2f dB (min %.2f), mean MSE %.3g", sm.wildcards.dataset, len(table),
        table["psnr_db"].mean(), table["psnr_db"].min(), table["mse_normalized"].mean())


run_step(sm.log[0], step, threads=sm.threads)
