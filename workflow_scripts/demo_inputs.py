"""rule demo_inputs: synthetic radiation fields or galaxy cutouts into resources/demo/{demo}."""

from discoverydiff.demo import write_galaxy_demo, write_radiation_demo
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)
p = sm.params.demo
if sm.wildcards.demo == "radiation":
    make = lambda: write_radiation_demo(  # noqa: E731
        sm.output[0], n_fits=p["n_fits"], n_hdf5=p["n_hdf5"], size=p["size"],
        slope=p["slope"], n_stars=p["n_stars"], seed=sm.params.seed,
    )
else:
    make = lambda: write_galaxy_demo(sm.output[0], n=p["n"], size=p["size"], seed=sm.params.seed)  # noqa: E731
run_step(sm.log[0], make)
