# Raw FITS / HDF5 / JPEG inputs -> results/{dataset}/tensors.h5 in [-1, 1] + normalization record.


rule ingest:
    input:
        ingest_inputs,
    output:
        tensors="results/{dataset}/tensors.h5",
        rejected="results/{dataset}/rejected.csv",
    log:
        "results/{dataset}/logs/ingest.log",
    benchmark:
        "results/{dataset}/benchmarks/ingest.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: THREADS["numeric"]
    params:
        dataset=dataset_config,
        resolution=config["model"]["resolution"],
        channels=config["model"]["channels"],
        seed=config["seed"],
        config_sha256=config_sha256,
    script:
        "../workflow_scripts/ingest.py"
