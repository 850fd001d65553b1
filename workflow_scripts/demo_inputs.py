"""rule demo_inputs: synthetic radiation fields or galaxy cutouts into resources/demo/{demo}."""

import logging

from discoverydiff.demo import write_galaxy_demo, write_radiation_demo
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)
p = sm.params.demo


def make():
    if sm.wildcards.demo == "radiation":
        manifest = write_radiation_demo(sm.output[0], n_fits=p["n_fits"], n_hdf5=p["n_hdf5"], size=p["size"],
                                        slope=p["slope"], n_stars=p["n_stars"], seed=sm.params.seed)
    else:
        manifest = write_galaxy_demo(sm.output[0], n=p["n"], size=p["size"], seed=sm.params.seed)
    logging.getLogger("discoverydiff.demo").info("wrote %s demo inputs to %s with seed %d: %s",
                                                 sm.wildcards.demo, sm.output[0], sm.params.seed, p)
    return manifest


run_step(sm.log[0], make, threads=sm.threads)
