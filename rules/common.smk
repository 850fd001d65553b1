# Config validation and every input function of the workflow.
import hashlib
import json
import sys
from glob import glob

from snakemake.utils import validate

validate(config, schema="../config/schema.yaml")


# {dataset} is one of the configured datasets, never results/base_model/ (whose sample shards
# would otherwise also match rule sample_discovered's output pattern).
wildcard_constraints:
    dataset="|".join(config["datasets"]),
    demo="radiation|galaxies",
    set="samples|baseline_samples|base_samples",
    control="unscreened|prior",
    figure="reconstruction|latent_geometry|samples|power_spectra|pdfs|morphology|memorization|novelty_fidelity|jacobian|reproducibility",


DATASETS = list(config["datasets"])

# What jobs ask the scheduler for (discoverydiff.jobs, standard library only: the interpreter
# Snakemake runs in needs no torch). Local runs: the GPUs of this host, or its cores, set how many
# model jobs run at once (the "gpu" resource, unless --resources gpu=N says otherwise) and the
# memory the scheduler shares out (mem_mb: the host's RAM, unless --resources mem_mb=N).
sys.path.insert(0, workflow.basedir)
from discoverydiff import jobs as model_jobs  # noqa: E402

LOCAL = workflow.local_exec
GPUS = model_jobs.gpu_count(config["device"]) if LOCAL else 0
CORES = workflow.global_resources["_cores"].value if LOCAL else None
# model jobs run on a GPU: this host's, or a cluster's GPU nodes (profiles/slurm)
MODEL_ON_GPU = config["device"] != "cpu" and (GPUS > 0 or not LOCAL)
if LOCAL:
    if "gpu" not in workflow.global_resources:
        workflow.global_resources["gpu"] = model_jobs.model_slots(CORES, GPUS)
    if "mem_mb" not in workflow.global_resources:
        workflow.global_resources["mem_mb"] = model_jobs.host_memory_mb()

# Threads of each kind of rule (config "threads"); Snakemake lowers them to --cores and sets
# OMP/MKL/OpenBLAS threads from them, and every script applies them to torch (run_step).
# threads.torch null: one per model job on a CPU-only host, cores per GPU on a GPU host, 4 on a cluster.
THREADS = dict(config["threads"])
THREADS["torch"] = (
    model_jobs.torch_threads(THREADS["torch"], CORES, GPUS)
    if LOCAL
    else (THREADS["torch"] or 4)
)


def model_threads(rule_name):
    """Threads of a model rule: THREADS["torch"], except on a CPU-only host with threads.torch null,
    where the cores are shared among the model jobs that fit in memory at once (a 256 px job
    that fills the RAM gets every core; discoverydiff.jobs.cpu_model_threads)."""
    if not LOCAL or MODEL_ON_GPU or config["threads"]["torch"] is not None:
        return THREADS["torch"]

    def threads(wildcards):
        need = model_jobs.rule_memory(
            rule_name, config, False, wildcards.get("dataset")
        )
        return model_jobs.cpu_model_threads(
            CORES,
            workflow.global_resources["gpu"].value,
            workflow.global_resources["mem_mb"].value,
            need["mem_mb"],
        )

    return threads


def model_memory(rule_name, key="mem_mb"):
    """Resource function: a model rule's mem_mb (host) or gpu_mem_mb (device), from the config
    (discoverydiff.jobs.rule_memory: measured per-item needs x the configured batch)."""

    def resource(wildcards):
        needs = model_jobs.rule_memory(
            rule_name, config, MODEL_ON_GPU, wildcards.get("dataset")
        )
        return needs[key]

    return resource


# Inversion and sampling run as config["shards"] jobs per file (rule gather_shards joins them).
scattergather:
    shard=config["shards"],


def shard_of(wildcards):
    """(index, count), 0-based, of the {scatteritem} wildcard "i-of-n"."""
    index, count = wildcards.scatteritem.split("-of-")
    return [int(index) - 1, int(count)]


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def discovery_config(wildcards):
    """The discovery section with the dataset's own settings (datasets.NAME.discovery) laid over it."""
    own = config["datasets"][wildcards.dataset].get("discovery") or {}
    merged = {**config["discovery"], **own}
    merged["screen"] = {
        **config["discovery"].get("screen", {}),
        **own.get("screen", {}),
    }
    merged["search"] = {
        **config["discovery"].get("search", {}),
        **own.get("search", {}),
    }
    return merged


def searched(wildcards):
    """Whether the settings job chooses some of the dataset's discovery knobs on the validation maps (the search
    is on, the dataset has validation maps, and its grid leaves a knob the config does not set).
    """
    from discoverydiff.discovery.search import config_fixed, grid_settings

    cfg = discovery_config(wildcards)
    search = cfg.get("search") or {}
    if not search.get("enabled", True) or not config["datasets"][wildcards.dataset].get(
        "n_validation"
    ):
        return False
    return grid_settings(search.get("grid") or {}, config_fixed(cfg)) != [{}]


def with_settings(wildcards, inputs):
    """``inputs`` plus the dataset's settings.yaml when its settings are searched (rule settings)."""
    if searched(wildcards):
        inputs["settings"] = f"results/{wildcards.dataset}/settings.yaml"
    return inputs


def discover_inputs(wildcards):
    return with_settings(
        wildcards,
        {
            "tensors": f"results/{wildcards.dataset}/tensors.h5",
            "latents": f"results/{wildcards.dataset}/latents.h5",
            "id_latents": "results/base_model/id_latents.h5",
            "model": model_inputs(wildcards),
        },
    )


def finetune_inputs(wildcards):
    inputs = {
        "tensors": f"results/{wildcards.dataset}/tensors.h5",
        "model": model_inputs(wildcards),
    }
    return with_settings(wildcards, inputs)


def baseline_sets_inputs(wildcards):
    inputs = {
        "candidates": f"results/{wildcards.dataset}/baseline_candidates.h5",
        "tensors": f"results/{wildcards.dataset}/tensors.h5",
    }
    return with_settings(wildcards, inputs)


def settings_inputs(wildcards):
    """What the settings job reads (the few-shot inversions, the ID latents, the model; for galaxies the
    few-shot and validation maps' morphology)."""
    inputs = {
        "tensors": f"results/{wildcards.dataset}/tensors.h5",
        "latents": f"results/{wildcards.dataset}/latents.h5",
        "id_latents": "results/base_model/id_latents.h5",
        "model": model_inputs(wildcards),
    }
    if config["datasets"][wildcards.dataset]["kind"] == "galaxy":
        inputs.update(morphology_tables(wildcards.dataset, ["fewshot", "validation"]))
    return inputs


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
        "memory_limit_mb": config["memory_limit_mb"],
        "seed": config["seed"],
    }


NEURAL_SOURCES = ("trained", "diffusers", "adm")
CONTROLS = config["evaluation"]["controls"]


def sample_sets():
    """The generated sets compared with the test maps; closed-form models have no baseline."""
    sets = ["samples"]
    sets += [
        f"discovered_{c}"
        for c in ("unscreened", "prior")
        if f"discovered_{c}" in CONTROLS
    ]
    if config["model"]["source"] in NEURAL_SOURCES:  # nothing to fine-tune otherwise
        sets.append("baseline_samples")
        if "baseline_selected" in CONTROLS:
            sets.append("baseline_selected")
    return sets + ["base_samples"]


def main_sets():
    """The sets exported in physical units (FITS and HDF5): discovered, base model, fine-tuned."""
    return [
        name
        for name in sample_sets()
        if name in ("samples", "base_samples", "baseline_samples")
    ]


def set_path(dataset, name):
    """Base-model samples are shared by every dataset; the others are the dataset's own."""
    if name == "base_samples":
        return "results/base_model/samples.h5"
    return f"results/{dataset}/{name}.h5"


def sample_set_file(wildcards):
    return set_path(wildcards.dataset, wildcards.set)


def stats_inputs(wildcards):
    inputs = {"tensors": f"results/{wildcards.dataset}/tensors.h5"}
    inputs.update({name: set_path(wildcards.dataset, name) for name in sample_sets()})
    inputs["empirical"] = f"results/{wildcards.dataset}/empirical_samples.h5"
    if config["datasets"][wildcards.dataset]["kind"] == "galaxy":
        inputs.update(morphology_tables(wildcards.dataset))
    return inputs


# The real sets, rows of tensors.h5, whose morphology is measured beside the sample sets'.
REAL_SETS = ["fewshot", "validation", "test"]


def sweep_references(wildcards):
    """The base-model and fine-tuned samples (and galaxies' real morphology tables) the sweep is drawn with."""
    inputs = [
        set_path(wildcards.dataset, name) for name in main_sets() if name != "samples"
    ]
    if config["datasets"][wildcards.dataset]["kind"] == "galaxy":
        inputs += list(
            morphology_tables(wildcards.dataset, ["fewshot", "validation"]).values()
        )
    return inputs


def seeds_inputs(wildcards):
    """The inputs of the seeds job: the few-shot targets' inversions, the ID latents, the model, the chosen
    settings, and the real sets' morphology (galaxies)."""
    inputs = discover_inputs(wildcards)
    if config["datasets"][wildcards.dataset]["kind"] == "galaxy":
        inputs.update(morphology_tables(wildcards.dataset, REAL_SETS))
    return inputs


def seeds_baseline(wildcards):
    """The baseline section for the seeds rule, or None when the model has no weights to fine-tune."""
    return config["baseline"] if config["model"]["source"] in NEURAL_SOURCES else None


def compared_sets(wildcards):
    """The generated sets of comparison.csv by their table names (samples are "discovered")."""
    return ["discovered" if name == "samples" else name for name in sample_sets()]


def morphology_tables(dataset, sets=None):
    """Input name -> morphology table of every set of a galaxy dataset (rule morphology)."""
    return {
        f"morphology_{name}": f"results/{dataset}/morphology/{name}.csv"
        for name in (sets or REAL_SETS + sample_sets())
    }


def morphology_inputs(wildcards):
    inputs = {"tensors": f"results/{wildcards.dataset}/tensors.h5"}
    if wildcards.set not in REAL_SETS:
        inputs["samples"] = set_path(wildcards.dataset, wildcards.set)
    return inputs


def dataset_kind(wildcards):
    return config["datasets"][wildcards.dataset]["kind"]


def all_targets():
    per_dataset = [
        "results/{dataset}/reconstruction.csv",
        "results/{dataset}/comparison.csv",
        "results/{dataset}/compute.csv",
        "results/{dataset}/geometry.csv",
        "results/{dataset}/jacobian.csv",
    ]
    physical = expand(
        "results/{dataset}/physical/{set}.fits", dataset=DATASETS, set=main_sets()
    )
    provenance = [
        "results/provenance/config.yaml",
        "results/provenance/software.tsv",
        "results/results.md",
    ]
    base_model = ["results/base_model/source_check.csv"]
    return (
        expand(per_dataset, dataset=DATASETS)
        + physical
        + figure_targets()
        + provenance
        + base_model
    )


# The figures of each kind of dataset, in story order (discoverydiff.plots.figure_names).
FIGURES = {
    "field": [
        "reconstruction",
        "latent_geometry",
        "samples",
        "power_spectra",
        "pdfs",
        "memorization",
        "jacobian",
        "reproducibility",
    ],
    "galaxy": [
        "reconstruction",
        "latent_geometry",
        "samples",
        "morphology",
        "memorization",
        "jacobian",
        "reproducibility",
    ],
}


def figure_inputs(wildcards):
    """The result files one figure of one dataset is drawn from."""
    results = f"results/{wildcards.dataset}"
    inputs = {"tensors": f"{results}/tensors.h5"}
    figure = wildcards.figure
    if figure == "reconstruction":
        inputs.update(
            h5=f"{results}/reconstruction.h5", csv=f"{results}/reconstruction.csv"
        )
    elif figure == "latent_geometry":
        inputs.update(
            latents=f"{results}/latents.h5",
            id_latents="results/base_model/id_latents.h5",
            discovered=f"{results}/discovered_latents.h5",
        )
    elif figure == "morphology":  # the few-shot and test maps, and the main sets
        inputs.update(
            morphology_tables(wildcards.dataset, ["fewshot", "test"] + main_sets())
        )
    elif figure == "power_spectra":
        inputs.update(
            spectra=f"{results}/power_spectra.csv",
            comparison=f"{results}/comparison.csv",
        )
    elif figure == "jacobian":
        inputs["jacobian"] = f"{results}/jacobian.csv"
    elif figure == "reproducibility":
        inputs.update(
            {name: set_path(wildcards.dataset, name) for name in main_sets()},
            empirical=f"{results}/empirical_samples.h5",
        )
    elif (
        figure == "novelty_fidelity"
    ):  # opt-in: rule novelty_sweep decodes a set per setting
        inputs.update(sweep=f"{results}/novelty_sweep.csv")
    else:
        inputs.update({name: set_path(wildcards.dataset, name) for name in main_sets()})
    return inputs


def figure_targets():
    return [
        f"results/{dataset}/figures/{figure}.png"
        for dataset in DATASETS
        for figure in FIGURES[config["datasets"][dataset]["kind"]]
    ]
