# Synthetic demo inputs, generated deterministically from the seed into resources/demo/.


rule demo_inputs:
    output:
        directory("resources/demo/{demo}"),
    log:
        "resources/demo/logs/{demo}.log",
    benchmark:
        "results/{demo}/benchmarks/demo_inputs.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: THREADS["numeric"]
    params:
        demo=demo_config,
        seed=config["seed"],
    script:
        "../workflow_scripts/demo_inputs.py"
