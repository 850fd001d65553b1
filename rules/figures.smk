# Paper figures of every dataset, drawn from its results alone, and the run's provenance
# for the report: snakemake figures --cores N; snakemake --report report.html


rule figure:
    input:
        unpack(figure_inputs),
    output:
        pdf="results/{dataset}/figures/{figure}.pdf",
        png=report(
            "results/{dataset}/figures/{figure}.png",
            caption="../report/figure.rst",
            category="{dataset}",
            subcategory="figures",
            labels={"figure": "{figure}"},
        ),
        data="results/{dataset}/figures/{figure}.csv",
    log:
        "results/{dataset}/logs/figure_{figure}.log",
    benchmark:
        "results/{dataset}/benchmarks/figure_{figure}.tsv"
    conda:
        "../envs/cpu.yaml"
    params:
        kind=dataset_kind,
        stats=config["stats"],
    script:
        "../workflow_scripts/figure.py"


rule provenance:
    output:
        config=report(
            "results/provenance/config.yaml",
            caption="../report/provenance.rst",
            category="provenance",
            labels={"file": "config"},
        ),
        software=report(
            "results/provenance/software.tsv",
            caption="../report/provenance.rst",
            category="provenance",
            labels={"file": "software"},
        ),
    log:
        "results/provenance/provenance.log",
    benchmark:
        "results/provenance/benchmarks/provenance.tsv"
    conda:
        "../envs/cpu.yaml"
    params:
        config=config,
    script:
        "../workflow_scripts/provenance.py"


rule figures:
    input:
        figure_targets(),
        rules.provenance.output,
