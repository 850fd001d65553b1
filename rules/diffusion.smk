# The frozen base model and the DDIM engine: train_base (when no checkpoint is given),
# invert, reconstruct, sample_base. GPU rules run on the CPU when there is none.


rule train_base:
    output:
        protected(directory("results/base_model/trained")),
    log:
        "results/base_model/logs/train_base.log",
    benchmark:
        "results/base_model/benchmarks/train_base.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: model_threads("train_base")
    resources:
        gpu=1,
        mem_mb=model_memory("train_base"),
        gpu_mem_mb=model_memory("train_base", "gpu_mem_mb"),
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
        temp("results/{dataset}/shards/latents_{scatteritem}.h5"),
    log:
        "results/{dataset}/logs/invert_{scatteritem}.log",
    benchmark:
        "results/{dataset}/benchmarks/invert_{scatteritem}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: model_threads("invert")
    resources:
        gpu=1,
        mem_mb=model_memory("invert"),
        gpu_mem_mb=model_memory("invert", "gpu_mem_mb"),
    params:
        engine=engine_params,
        shard=shard_of,
    script:
        "../workflow_scripts/invert.py"


rule reconstruct:
    input:
        latents="results/{dataset}/latents.h5",
        model=model_inputs,
    output:
        temp("results/{dataset}/shards/reconstruction_{scatteritem}.h5"),
    log:
        "results/{dataset}/logs/reconstruct_{scatteritem}.log",
    benchmark:
        "results/{dataset}/benchmarks/reconstruct_{scatteritem}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: model_threads("reconstruct")
    resources:
        gpu=1,
        mem_mb=model_memory("reconstruct"),
        gpu_mem_mb=model_memory("reconstruct", "gpu_mem_mb"),
    params:
        engine=engine_params,
        shard=shard_of,
    script:
        "../workflow_scripts/reconstruct.py"


rule reconstruction_table:
    input:
        tensors="results/{dataset}/tensors.h5",
        h5="results/{dataset}/reconstruction.h5",
    output:
        report(
            "results/{dataset}/reconstruction.csv",
            caption="../report/reconstruction_table.rst",
            category="{dataset}",
            subcategory="tables",
        ),
    log:
        "results/{dataset}/logs/reconstruction_table.log",
    benchmark:
        "results/{dataset}/benchmarks/reconstruction_table.tsv"
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/reconstruction_table.py"


rule sample_base:
    input:
        model=model_inputs,
    output:
        samples=temp("results/base_model/shards/samples_{scatteritem}.h5"),
        latents=temp("results/base_model/shards/id_latents_{scatteritem}.h5"),
    log:
        "results/base_model/logs/sample_base_{scatteritem}.log",
    benchmark:
        "results/base_model/benchmarks/sample_base_{scatteritem}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: model_threads("sample_base")
    resources:
        gpu=1,
        mem_mb=model_memory("sample_base"),
        gpu_mem_mb=model_memory("sample_base", "gpu_mem_mb"),
    params:
        engine=engine_params,
        shard=shard_of,
    script:
        "../workflow_scripts/sample_base.py"


# Shards of a tensor file (one GPU job each) joined in order: the one-shard file, bit for bit.
rule gather_shards:
    input:
        gather.shard("results/{{group}}/shards/{{name}}_{scatteritem}.h5"),
    output:
        "results/{group}/{name}.h5",
    log:
        "results/{group}/logs/gather_{name}.log",
    benchmark:
        "results/{group}/benchmarks/gather_{name}.tsv"
    wildcard_constraints:
        name="latents|reconstruction|samples|id_latents|discovered_unscreened|discovered_prior",
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/gather_shards.py"
