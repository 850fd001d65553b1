"""rule gather_shards: join the shards of a tensor file, in order, into the file a one-shard run writes."""

from discoverydiff.store import gather_tensor_files
from discoverydiff.workflow import run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)
run_step(sm.log[0], lambda: gather_tensor_files(list(sm.input), sm.output[0]))
