"""rule reconstruct: latents -> regenerated images + per-image MSE / PSNR / physical error."""

import logging

from discoverydiff.engine import generate_tensor_file, reconstruction_table, write_csv_atomic
from discoverydiff.workflow import engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    model, settings, options, seed = engine_from_params(sm.params.engine, sm.input.model)
    generate_tensor_file(model, sm.input.latents, sm.output.h5, settings, options, seed, kind="reconstruction")
    table = reconstruction_table(sm.input.tensors, sm.output.h5)
    write_csv_atomic(table, sm.output.csv)
    logging.getLogger("discoverydiff.reconstruct").info(
        "%s: %d images, mean PSNR %.2f dB (min %.2f), mean MSE %.3g", sm.wildcards.dataset, len(table),
        table["psnr_db"].mean(), table["psnr_db"].min(), table["mse_normalized"].mean())


run_step(sm.log[0], step)
