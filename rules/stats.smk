# Back to physical units, and the domain statistics of every sample set.


rule to_physical:
    input:
        samples=sample_set_file,
        tensors="results/{dataset}/tensors.h5",
    output:
        fits="results/{dataset}/physical/{set}.fits",
        h5="results/{dataset}/physical/{set}.h5",
    log:
        "results/{dataset}/logs/to_physical_{set}.log",
    benchmark:
        "results/{dataset}/benchmarks/to_physical_{set}.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: THREADS["numeric"]
    script:
        "../workflow_scripts/to_physical.py"


rule stats:
    input:
        unpack(stats_inputs),
    output:
        comparison=report(
            "results/{dataset}/comparison.csv",
            caption="../report/comparison.rst",
            category="{dataset}",
            subcategory="tables",
        ),
        spectra="results/{dataset}/power_spectra.csv",
        novelty="results/{dataset}/novelty.csv",
        two_sample=report(
            "results/{dataset}/two_sample.csv",
            caption="../report/two_sample.rst",
            category="{dataset}",
            subcategory="tables",
        ),
        selection="results/{dataset}/selection.csv",
    log:
        "results/{dataset}/logs/stats.log",
    benchmark:
        "results/{dataset}/benchmarks/stats.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: THREADS["numeric"]
    params:
        kind=dataset_kind,
        stats=config["stats"],
        seed=config["seed"],
        n_samples=config["discovery"]["n_samples"],
    script:
        "../workflow_scripts/stats.py"


# What each compared set cost (UNet forwards, training steps, seconds), beside the comparison.
rule compute:
    input:
        unpack(stats_inputs),
        latents="results/{dataset}/latents.h5",
    output:
        report(
            "results/{dataset}/compute.csv",
            caption="../report/compute.rst",
            category="{dataset}",
            subcategory="tables",
        ),
    log:
        "results/{dataset}/logs/compute.log",
    conda:
        "../envs/cpu.yaml"
    params:
        sets=compared_sets,
        n_samples=config["discovery"]["n_samples"],
    script:
        "../workflow_scripts/compute.py"


# Opt-in (not part of `all`): discovery, the baselines and the controls again under each seed of
# evaluation.seeds, every set against the test maps; `snakemake --cores N results/{dataset}/seeds.csv`.
rule seeds:
    input:
        unpack(seeds_inputs),
    output:
        seeds="results/{dataset}/seeds.csv",
        summary=report(
            "results/{dataset}/seeds_summary.csv",
            caption="../report/seeds.rst",
            category="{dataset}",
            subcategory="tables",
        ),
    log:
        "results/{dataset}/logs/seeds.log",
    benchmark:
        "results/{dataset}/benchmarks/seeds.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: model_threads("seeds")
    resources:
        gpu=1,
        mem_mb=model_memory("seeds"),
        gpu_mem_mb=model_memory("seeds", "gpu_mem_mb"),
    params:
        engine=engine_params,
        discovery=discovery_config,
        baseline=seeds_baseline,
        stats=config["stats"],
        kind=dataset_kind,
        seeds=config["evaluation"]["seeds"],
        controls=CONTROLS,
        n_samples=config["discovery"]["n_samples"],
    script:
        "../workflow_scripts/seeds.py"


# The results of every dataset as Markdown, from the tables alone (no number typed by hand).
rule results_markdown:
    input:
        expand(
            "results/{dataset}/{table}.csv",
            dataset=DATASETS,
            table=["comparison", "two_sample", "compute"],
        ),
    output:
        "results/results.md",
    log:
        "results/logs/results_markdown.log",
    conda:
        "../envs/cpu.yaml"
    params:
        folders=expand("results/{dataset}", dataset=DATASETS),
    script:
        "../workflow_scripts/results_markdown.py"


rule source_check:
    input:
        samples="results/base_model/samples.h5",
    output:
        report(
            "results/base_model/source_check.csv",
            caption="../report/source_check.rst",
            category="base model",
            subcategory="tables",
        ),
    log:
        "results/base_model/logs/source_check.log",
    benchmark:
        "results/base_model/benchmarks/source_check.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: THREADS["numeric"]
    params:
        model=config["model"],
        seed=config["seed"],
        check=config["stats"]["source_check"],
    script:
        "../workflow_scripts/source_check.py"


rule morphology:
    input:
        unpack(morphology_inputs),
    output:
        "results/{dataset}/morphology/{set}.csv",
    log:
        "results/{dataset}/logs/morphology_{set}.log",
    benchmark:
        "results/{dataset}/benchmarks/morphology_{set}.tsv"
    wildcard_constraints:
        set="fewshot|validation|test|samples|baseline_samples|baseline_selected|base_samples|discovered_unscreened|discovered_prior",
    conda:
        "../envs/cpu.yaml"
    threads: THREADS["morphology"]
    params:
        settings=config["stats"]["morphology"],
    script:
        "../workflow_scripts/morphology.py"
