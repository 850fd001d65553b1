"""rule provenance: the run's config and the versions of the software that made it, for the report."""

from discoverydiff.workflow import run_step, write_provenance

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)
run_step(sm.log[0], lambda: write_provenance(dict(sm.params.config), sm.output.config, sm.output.software))
