# Discovery: geometric sampling of new latents for each target domain, and their decoding.


# Geometric acceptance, then screening of the accepted latents by decoded previews or full
# decodes (discovery.screen; full decodes are compared with the few-shot maps): a model job.
# Discovery's knobs the config leaves open, chosen on the validation maps (discovery.search):
# results/{dataset}/settings.yaml, read by every rule that runs discovery or its controls.
rule settings:
    input:
        unpack(settings_inputs),
    output:
        report(
            "results/{dataset}/settings.yaml",
            caption="../report/settings.rst",
            category="{dataset}",
            subcategory="tables",
        ),
    log:
        "results/{dataset}/logs/settings.log",
    benchmark:
        "results/{dataset}/benchmarks/settings.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: model_threads("settings")
    resources:
        gpu=1,
        mem_mb=model_memory("settings"),
        gpu_mem_mb=model_memory("settings", "gpu_mem_mb"),
    params:
        discovery=discovery_config,
        stats=config["stats"],
        kind=dataset_kind,
        seed=config["seed"],
        engine=engine_params,
    script:
        "../workflow_scripts/settings.py"


rule discover:
    input:
        unpack(discover_inputs),
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
        kind=dataset_kind,
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


# The fine-tuned baseline draws n_samples, or oversample times as many when the baseline_selected
# control is on (rule baseline_sets keeps the first n_samples and the selection's n_samples).
rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        "results/{dataset}/baseline_candidates.h5",
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
        discovery=discovery_config,
        selected="baseline_selected" in CONTROLS,
    script:
        "../workflow_scripts/finetune.py"


rule baseline_sets:
    input:
        unpack(baseline_sets_inputs),
    output:
        samples="results/{dataset}/baseline_samples.h5",
        selected="results/{dataset}/baseline_selected.h5",
        screening="results/{dataset}/baseline_screening.csv",
    log:
        "results/{dataset}/logs/baseline_sets.log",
    benchmark:
        "results/{dataset}/benchmarks/baseline_sets.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: THREADS["numeric"]
    params:
        n_samples=config["discovery"]["n_samples"],
        discovery=discovery_config,
        seed=config["seed"],
    script:
        "../workflow_scripts/baseline_sets.py"


# Controls of the discovered set (config evaluation.controls): the paper's prior scheme with the same
# screening budget, and a random draw of discovery's candidates before screening.
rule discover_prior:
    input:
        unpack(discover_inputs),
    output:
        latents="results/{dataset}/controls/prior_latents.h5",
        geometry="results/{dataset}/controls/prior_geometry.csv",
        screening="results/{dataset}/controls/prior_screening.csv",
    log:
        "results/{dataset}/logs/discover_prior.log",
    benchmark:
        "results/{dataset}/benchmarks/discover_prior.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: model_threads("discover_prior")
    resources:
        gpu=1,
        mem_mb=model_memory("discover_prior"),
        gpu_mem_mb=model_memory("discover_prior", "gpu_mem_mb"),
    params:
        discovery=discovery_config,
        control="discovered_prior",
        seed=config["seed"],
        engine=engine_params,
        kind=dataset_kind,
    script:
        "../workflow_scripts/discover.py"


rule unscreened_latents:
    input:
        "results/{dataset}/discovered_latents.h5",
    output:
        "results/{dataset}/controls/unscreened_latents.h5",
    log:
        "results/{dataset}/logs/unscreened_latents.log",
    benchmark:
        "results/{dataset}/benchmarks/unscreened_latents.tsv"
    conda:
        "../envs/cpu.yaml"
    params:
        n_samples=config["discovery"]["n_samples"],
        seed=config["seed"],
    script:
        "../workflow_scripts/unscreened_latents.py"


rule sample_control:
    input:
        latents="results/{dataset}/controls/{control}_latents.h5",
        model=model_inputs,
    output:
        temp("results/{dataset}/shards/discovered_{control}_{scatteritem}.h5"),
    log:
        "results/{dataset}/logs/sample_{control}_{scatteritem}.log",
    benchmark:
        "results/{dataset}/benchmarks/sample_{control}_{scatteritem}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: model_threads("sample_control")
    resources:
        gpu=1,
        mem_mb=model_memory("sample_control"),
        gpu_mem_mb=model_memory("sample_control", "gpu_mem_mb"),
    params:
        engine=engine_params,
        shard=shard_of,
    script:
        "../workflow_scripts/sample_discovered.py"


# Opt-in (not part of `all`): the novelty-fidelity trade-off as discovery's knob varies;
# `snakemake --cores N results/{dataset}/figures/novelty_fidelity.pdf` draws it.
rule novelty_sweep:
    input:
        unpack(discover_inputs),
        references=sweep_references,
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
