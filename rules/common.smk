# Config validation and every input function of the workflow.
import hashlib
import json
from glob import glob

from snakemake.utils import validate

validate(config, schema="../config/schema.yaml")


wildcard_constraints:
    dataset="[A-Za-z0-9_-]+",
    demo="radiation|galaxies",


DATASETS = list(config["datasets"])


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def demo_config(wildcards):
    return config["demo"][wildcards.demo]


def config_sha256(wildcards):
    """Hash of what determines a dataset's results: its section, the model, the seed."""
    relevant = {
        "dataset": config["datasets"][wildcards.dataset],
        "model": config["model"],
        "seed": config["seed"],
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def ingest_inputs(wildcards):
    """The demo directory for generated datasets, else every matched input file."""
    cfg = config["datasets"][wildcards.dataset]
    if cfg.get("generate"):
        return [f"resources/demo/{cfg['generate']}"]
    files = []
    for entry in cfg["inputs"]:
        files.extend(sorted(glob(entry["pattern"], recursive=True)))
    if cfg.get("catalogue"):
        files.append(cfg["catalogue"]["path"])
    return files


def all_targets():
    return expand("results/{dataset}/tensors.h5", dataset=DATASETS)
