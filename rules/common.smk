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
        "model": {k: config["model"][k] for k in ("resolution", "channels")},
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


def model_inputs(wildcards):
    """The base model's files: its checkpoint, or train_base's output when there is none."""
    model = config["model"]
    if model["source"] == "trained" and not model.get("path"):
        return ["results/base_model/trained"]
    if model.get("path"):
        return [model["path"]]
    if model.get("source_images", {}).get("kind") == "tensors":
        return [model["source_images"]["path"]]
    return []


def engine_params(wildcards):
    """Everything the engine scripts need: model, DDIM settings, device, seed."""
    return {
        "model": config["model"],
        "diffusion": config["diffusion"],
        "device": config["device"],
        "precision": config["precision"],
        "seed": config["seed"],
    }


NEURAL_SOURCES = ("trained", "diffusers", "adm")


def all_targets():
    per_dataset = [
        "results/{dataset}/tensors.h5",
        "results/{dataset}/latents.h5",
        "results/{dataset}/reconstruction.csv",
        "results/{dataset}/samples.h5",
    ]
    if (
        config["model"]["source"] in NEURAL_SOURCES
    ):  # closed-form models have nothing to fine-tune
        per_dataset.append("results/{dataset}/baseline_samples.h5")
    return expand(per_dataset, dataset=DATASETS) + ["results/base_model/id_latents.h5"]
