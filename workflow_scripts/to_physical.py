"""rule to_physical: one sample set -> FITS and HDF5 in the dataset's physical units."""

from discoverydiff.physical import export_sample_set
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)
run_step(sm.log[0], lambda: export_sample_set(sm.input.samples, sm.input.tensors, sm.output.fits, sm.output.h5),
         threads=sm.threads)
