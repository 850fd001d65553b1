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
    script:
        "../workflow_scripts/stats.py"


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
        set="fewshot|heldout|samples|baseline_samples|base_samples",
    conda:
        "../envs/cpu.yaml"
    threads: THREADS["morphology"]
    params:
        settings=config["stats"]["morphology"],
    script:
        "../workflow_scripts/morphology.py"
