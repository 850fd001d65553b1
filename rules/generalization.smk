# How the frozen model generalizes around the new domain: the rank of its denoiser's Jacobian,
# and the memorization reference point (the few-shot set's own optimal denoiser).


ruleorder: jacobian_in_domain > jacobian


rule jacobian_in_domain:
    input:
        base_samples="results/base_model/samples.h5",
        model=model_inputs,
    output:
        "results/base_model/jacobian.csv",
    log:
        "results/base_model/logs/jacobian.log",
    benchmark:
        "results/base_model/benchmarks/jacobian.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: model_threads("jacobian_in_domain")
    resources:
        gpu=1,
        mem_mb=model_memory("jacobian_in_domain"),
        gpu_mem_mb=model_memory("jacobian_in_domain", "gpu_mem_mb"),
    params:
        engine=engine_params,
        jacobian=config["jacobian"],
    script:
        "../workflow_scripts/jacobian.py"


# The few-shot targets' rows, beside the in-domain rows (computed once for all datasets).
rule jacobian:
    input:
        tensors="results/{dataset}/tensors.h5",
        in_domain="results/base_model/jacobian.csv",
        model=model_inputs,
    output:
        report(
            "results/{dataset}/jacobian.csv",
            caption="../report/jacobian.rst",
            category="{dataset}",
            subcategory="tables",
        ),
    log:
        "results/{dataset}/logs/jacobian.log",
    benchmark:
        "results/{dataset}/benchmarks/jacobian.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: model_threads("jacobian")
    resources:
        gpu=1,
        mem_mb=model_memory("jacobian"),
        gpu_mem_mb=model_memory("jacobian", "gpu_mem_mb"),
    params:
        engine=engine_params,
        jacobian=config["jacobian"],
    script:
        "../workflow_scripts/jacobian.py"


# The memorization reference point: what the few-shot set's exact optimal denoiser draws from
# the noise the base model and the fine-tuned baseline start from (rpscore_vs_empirical).
rule sample_empirical:
    input:
        tensors="results/{dataset}/tensors.h5",
        model=model_inputs,
    output:
        "results/{dataset}/empirical_samples.h5",
    log:
        "results/{dataset}/logs/sample_empirical.log",
    benchmark:
        "results/{dataset}/benchmarks/sample_empirical.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: model_threads("sample_empirical")
    resources:
        mem_mb=model_memory("sample_empirical"),
    params:
        engine=engine_params,
        n_samples=config["discovery"]["n_samples"],
    script:
        "../workflow_scripts/sample_empirical.py"
