# The frozen base model and the DDIM engine: train_base (when no checkpoint is given),
# invert, reconstruct, sample_base. GPU rules run on the CPU when there is none.


rule train_base:
    output:
        directory("results/base_model/trained"),
    log:
        "results/base_model/logs/train_base.log",
    benchmark:
        "results/base_model/benchmarks/train_base.tsv"
    conda:
        "../envs/core.yaml"
    resources:
        gpu=1,
    params:
        model=config["model"],
        seed=config["seed"],
        device=config["device"],
        precision=config["precision"],
    script:
        "../workflow_scripts/train_base.py"


rule invert:
    input:
        tensors="results/{dataset}/tensors.h5",
        model=model_inputs,
    output:
        "results/{dataset}/latents.h5",
    log:
        "results/{dataset}/logs/invert.log",
    benchmark:
        "results/{dataset}/benchmarks/invert.tsv"
    conda:
        "../envs/core.yaml"
    resources:
        gpu=1,
    params:
        engine=engine_params,
    script:
        "../workflow_scripts/invert.py"


rule reconstruct:
    input:
        latents="results/{dataset}/latents.h5",
        tensors="results/{dataset}/tensors.h5",
        model=model_inputs,
    output:
        h5="results/{dataset}/reconstruction.h5",
        csv=report(
            "results/{dataset}/reconstruction.csv",
            caption="../report/reconstruction_table.rst",
            category="{dataset}",
            subcategory="tables",
        ),
    log:
        "results/{dataset}/logs/reconstruct.log",
    benchmark:
        "results/{dataset}/benchmarks/reconstruct.tsv"
    conda:
        "../envs/core.yaml"
    resources:
        gpu=1,
    params:
        engine=engine_params,
    script:
        "../workflow_scripts/reconstruct.py"


rule sample_base:
    input:
        model=model_inputs,
    output:
        samples="results/base_model/samples.h5",
        latents="results/base_model/id_latents.h5",
    log:
        "results/base_model/logs/sample_base.log",
    benchmark:
        "results/base_model/benchmarks/sample_base.tsv"
    conda:
        "../envs/core.yaml"
    resources:
        gpu=1,
    params:
        engine=engine_params,
    script:
        "../workflow_scripts/sample_base.py"
