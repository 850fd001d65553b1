"""rule ingest: raw inputs of one dataset -> tensors.h5 + rejected.csv."""

from discoverydiff.ingest import ingest_dataset
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)
run_step(
    sm.log[0],
    lambda: ingest_dataset(
        sm.wildcards.dataset,
        sm.params.dataset,
        sm.output.tensors,
        sm.output.rejected,
        resolution=sm.params.resolution,
        model_channels=sm.params.channels,
        seed=sm.params.seed,
        provenance={"config_sha256": sm.params.config_sha256},
        workers=sm.threads,
    ),
    threads=sm.threads,
)
