# Discovery: geometric sampling of new latents for each target domain, and their decoding.


# Geometric acceptance, then screening of the accepted latents by decoded previews or full
# decodes (discovery.screen; full decodes are compared with the few-shot maps): a model job.
rule discover:
    input:
        tensors="results/{dataset}/tensors.h5",
        latents="results/{dataset}/latents.h5",
        id_latents="results/base_model/id_latents.h5",
        model=model_inputs,
    output:
        latents="results/{dataset}/discovered_latents.h5",
        geometry=report(
            "results/{dataset}/geometry.csv",
            caption="../report/geometry.rst",
            category="{dataset}",
            subcategory="tables",
        ),
        screening=report(
            "results/{dataset}/screening.csv",
            caption="../report/screening.rst",
            category="{dataset}",
            subcategory="tables",
        ),
    log:
        "results/{dataset}/logs/discover.log",
    benchmark:
        "results/{dataset}/benchmarks/discover.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: model_threads("discover")
    resources:
        gpu=1,
        mem_mb=model_memory("discover"),
        gpu_mem_mb=model_memory("discover", "gpu_mem_mb"),
    params:
        discovery=discovery_config,
        seed=config["seed"],
        engine=engine_params,
    script:
        "../workflow_scripts/discover.py"


rule sample_discovered:
    input:
        latents="results/{dataset}/discovered_latents.h5",
        model=model_inputs,
    output:
        temp("results/{dataset}/shards/samples_{scatteritem}.h5"),
    log:
        "results/{dataset}/logs/sample_discovered_{scatteritem}.log",
    benchmark:
        "results/{dataset}/benchmarks/sample_discovered_{scatteritem}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: model_threads("sample_discovered")
    resources:
        gpu=1,
        mem_mb=model_memory("sample_discovered"),
        gpu_mem_mb=model_memory("sample_discovered", "gpu_mem_mb"),
    params:
        engine=engine_params,
        shard=shard_of,
    script:
        "../workflow_scripts/sample_discovered.py"


rule finetune:
    input:
        tensors="results/{dataset}/tensors.h5",
        model=model_inputs,
    output:
        "results/{dataset}/baseline_samples.h5",
    log:
        "results/{dataset}/logs/finetune.log",
    benchmark:
        "results/{dataset}/benchmarks/finetune.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: model_threads("finetune")
    resources:
        gpu=1,
        mem_mb=model_memory("finetune"),
        gpu_mem_mb=model_memory("finetune", "gpu_mem_mb"),
    params:
        engine=engine_params,
        baseline=config["baseline"],
        n_samples=config["discovery"]["n_samples"],
    script:
        "../workflow_scripts/finetune.py"


# Opt-in (not part of `all`): the novelty-fidelity trade-off as discovery's knob varies;
# `snakemake results/{dataset}/figures/novelty_fidelity.pdf` draws it.
rule novelty_sweep:
    input:
        tensors="results/{dataset}/tensors.h5",
        latents="results/{dataset}/latents.h5",
        id_latents="results/base_model/id_latents.h5",
        comparison="results/{dataset}/comparison.csv",
        model=model_inputs,
    output:
        "results/{dataset}/novelty_sweep.csv",
    log:
        "results/{dataset}/logs/novelty_sweep.log",
    benchmark:
        "results/{dataset}/benchmarks/novelty_sweep.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: model_threads("novelty_sweep")
    resources:
        gpu=1,
        mem_mb=model_memory("novelty_sweep"),
        gpu_mem_mb=model_memory("novelty_sweep", "gpu_mem_mb"),
    params:
        engine=engine_params,
        discovery=discovery_config,
        stats=config["stats"],
        kind=dataset_kind,
    script:
        "../workflow_scripts/novelty_sweep.py"
