#!/usr/bin/env bash
# Snakemake runs this in the environment it has just created from the .yaml of the same name:
# it installs this checkout's discoverydiff package, editable and without dependencies (the
# environment has them). A `pip: [-e ..]` entry in the .yaml cannot do this: Snakemake copies the
# .yaml into its conda prefix (.snakemake/conda/) and conda resolves the path from there.
# Snakemake runs this script from its working directory: the checkout, unless --directory
# points elsewhere; then set DISCOVERYDIFF_ROOT to the checkout.
set -euo pipefail
root="${DISCOVERYDIFF_ROOT:-$PWD}"
if [ ! -f "$root/pyproject.toml" ] || [ ! -d "$root/discoverydiff" ]; then
    echo "post-deploy: $root is not the discoverydiff checkout: run snakemake from it, or set DISCOVERYDIFF_ROOT" >&2
    exit 1
fi
python -m pip install --quiet --no-deps --no-build-isolation -e "$root"
