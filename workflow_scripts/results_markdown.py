"""rule results_markdown: every dataset's result tables -> results/results.md (no number typed by hand)."""

from pathlib import Path

from discoverydiff.evaluation.markdown import results_markdown
from discoverydiff.store import atomic_path
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)

HEADER = ("# Results\n\nWritten by rule results_markdown from the result tables of this run "
          "(`python -m discoverydiff.evaluation.markdown` does the same for any results folders).")


def step():
    with atomic_path(sm.output[0]) as tmp:
        Path(tmp).write_text(results_markdown(list(sm.params.folders), header=HEADER))


run_step(sm.log[0], step)
