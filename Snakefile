# discoverydiff: discover new domains inside a frozen, pre-trained diffusion model.
# The table of contents of the workflow; each stage lives in rules/, all logic in discoverydiff/.
import os

from snakemake.utils import min_version

min_version("9.0")

# The conda envs' post-deploy scripts install the package from this checkout.
os.environ.setdefault("DISCOVERYDIFF_ROOT", workflow.basedir)


# The embedded demo, unless configs are given with --configfile (Snakemake would merge
# them into the demo's and run the demo datasets too). --config KEY=VALUE still edits the demo.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/ingest.smk"
include: "rules/diffusion.smk"
include: "rules/discovery.smk"
include: "rules/stats.smk"
include: "rules/generalization.smk"
include: "rules/figures.smk"


report: "report/workflow.rst"


# Light rules run where Snakemake runs, not as cluster jobs: joining shards, tables, figures,
# the provenance record.
localrules:
    all,
    figures,
    figure,
    gather_shards,
    provenance,
    reconstruction_table,
    compute,
    results_markdown,
    unscreened_latents,


rule all:
    default_target: True
    input:
        all_targets(),
