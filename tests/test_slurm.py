"""The workflow on a real (one-node, localhost) SLURM cluster through profiles/slurm gives the local run's results.

Needs root and Debian's slurm-wlm and munge (.ci/install-slurm); skipped, with the reason, otherwise.
"""

import copy
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from slurm_cluster import ClusterUnavailable, SlurmCluster, missing_programs
from test_envs import rule_bodies
from test_workflow import TINY_DEMO, snakemake

from discoverydiff.store import read_tensor_file

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"


def _gpu_rules() -> set[str]:
    """Rules whose resources ask for a GPU (`gpu=1`) in rules/*.smk."""
    rules = {}
    for path in sorted((REPO / "rules").glob("*.smk")):
        rules.update(rule_bodies(path.read_text()))
    return {name for name, body in rules.items() if re.search(r"^\s*gpu\s*=\s*1", body, re.MULTILINE)}


GPU_RULES = _gpu_rules()


def _local_rules() -> set[str]:
    """The Snakefile's `localrules:` block (rules run where Snakemake runs, never as SLURM jobs)."""
    text = (REPO / "Snakefile").read_text()
    block = re.search(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", text, re.MULTILINE)
    assert block, "the Snakefile has no localrules block"
    return {name.strip(" \t,") for name in block.group(1).splitlines()}


LOCAL_RULES = _local_rules()

# Every tensor file and table these targets produce is compared (all of the engine's rules but
# train_base and finetune, which a closed-form model does not have, and the gathers of their
# shards); the targets leave out the
# FITS exports, figures and provenance: about 20 more jobs of seconds each, at about 12 s of status
# polling per step of the DAG.
TARGETS = [f"results/{dataset}/{name}" for dataset in TINY_DEMO["datasets"]
           for name in ("reconstruction.csv", "comparison.csv")]
TABLES = ["reconstruction.csv", "comparison.csv", "geometry.csv", "power_spectra.csv"]

# What this one node can give: the profile's placeholders (partition, memory, cores, wall time)
# are overridden on the command line; its empty slurm_account is kept, so the test also shows that
# an empty account works on a cluster without accounting.
TEST_RESOURCES = {"slurm_partition": "debug", "mem_mb": 1000, "cpus_per_task": 1, "runtime": 30}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, request):
    if os.geteuid() != 0:
        pytest.skip("a SLURM test cluster needs root (slurmd runs jobs as their user)")
    missing = missing_programs()
    if missing:
        pytest.skip(f"SLURM/munge programs missing: {', '.join(missing)} (apt-get install slurm-wlm munge)")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"), partition=TEST_RESOURCES["slurm_partition"])
    request.addfinalizer(cluster.stop)  # also when start() fails half-way or a test fails
    try:
        cluster.start()
    except ClusterUnavailable as exc:
        pytest.skip(f"the SLURM test cluster did not start: {exc}")
    return cluster


def _resource_args(profile: dict) -> list[str]:
    """The profile's resources with the test cluster's memory, partition and wall time; rules the
    profile sizes for survey-scale data (set-resources mem_mb) get the test node's memory too
    (--set-resources on the command line replaces the profile's whole set, so all are given)."""
    resources = dict(profile["default-resources"], **TEST_RESOURCES)
    per_rule = [f"{rule}:{key}={min(value, TEST_RESOURCES['mem_mb']) if key == 'mem_mb' else value}"
                for rule, entries in profile["set-resources"].items() for key, value in entries.items()]
    return ["--default-resources", *(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
                                     for k, v in resources.items()), "--set-resources", *per_rule]


def _job_counts(log: str) -> dict[str, int]:
    """Jobs per rule (and ``total``) of a run from the 'Job stats' table Snakemake prints before it starts."""
    table = log.split("Job stats:", 1)
    assert len(table) == 2, f"no 'Job stats' table in the run's log:\n{log[-2000:]}"
    counts = {}
    for line in table[1].splitlines()[3:]:
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            break
        counts[fields[0]] = int(fields[1])
    assert "total" in counts, f"no 'Job stats' total in the run's log:\n{log[-2000:]}"
    return counts


def test_profile_gives_gpu_rules_a_gpu_and_fillable_placeholders():
    profile = yaml.safe_load((PROFILE / "profile.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["slurm-status-command"] == "squeue"
    assert {"slurm_account", "slurm_partition", "runtime", "mem_mb"} <= set(profile["default-resources"])
    assert "cpus_per_task" not in profile["default-resources"]  # each job asks for its rule's threads
    assert GPU_RULES <= set(profile["set-resources"])
    for rule, resources in profile["set-resources"].items():
        if rule in GPU_RULES:
            # one GPU and a wall time of their own (README's per-rule table), not the CPU jobs' default
            assert resources["gpu"] == 1 and resources["runtime"] >= 30, rule
            assert "mem_mb" not in resources, rule  # computed by the rule from the config (discoverydiff.jobs)
        else:  # CPU rules sized from benchmarks/README.md's measured peaks
            assert "gpu" not in resources and resources["mem_mb"] > 0, rule
    assert 'gres: "gpu:1"' in (PROFILE / "profile.yaml").read_text()  # the documented alternative


@pytest.mark.slurm
def test_slurm_run_equals_local_run(cluster, tmp_path, monkeypatch):
    config = copy.deepcopy(TINY_DEMO)
    config["device"] = "cpu"  # the same device in both runs, also on a machine with a GPU
    config["threads"] = {"torch": 1, "numeric": 1, "morphology": 1}  # the one core each SLURM job gets
    # Same thread count in both runs (the SLURM jobs get 1 core), so reductions add up in the same order
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    local = snakemake(tmp_path / "local", config, *TARGETS)
    assert local.returncode == 0, local.stderr[-3000:]
    counts = _job_counts(local.stderr)
    n_jobs = counts["total"] - sum(counts.get(rule, 0) for rule in LOCAL_RULES)  # local rules stay local
    assert counts.get("gather_shards", 0) > 0

    env = cluster.env  # SLURM_CONF and the srun shim, exported to the jobs; no outer job's SLURM_* variables
    for key in set(os.environ) - set(env):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    profile = yaml.safe_load((PROFILE / "profile.yaml").read_text())
    started = time.monotonic()
    run = snakemake(tmp_path / "slurm", config, "--profile", str(PROFILE), "--workflow-profile", "none",
                    *_resource_args(profile), "--slurm-init-seconds-before-status-checks", "1",
                    "--latency-wait", "5", "--retries", "0", *TARGETS)
    wall = time.monotonic() - started
    logs = "\n".join(p.read_text(errors="replace")[-2000:]
                     for p in (tmp_path / "slurm/.snakemake/slurm_logs").rglob("*.log"))
    assert run.returncode == 0, f"{run.stderr[-4000:]}\n{logs}\n{cluster.log_tails()}"
    print(f"SLURM run: {wall:.0f} s")

    # Every job went through SLURM, GPU rules with one GPU, the others with none
    # (squeue keeps finished jobs for MinJobAge; the plugin's comment is rule_<rule>[_wildcards_<...>])
    queue = cluster.client("squeue", "--states=all", "-h", "-O",
                           "Comment:300,tres-per-job:40,tres-per-node:40,State:20")
    jobs = [line.split() for line in queue.stdout.splitlines()]
    assert len(jobs) == n_jobs and all(job[-1] == "COMPLETED" for job in jobs), queue.stdout
    for comment, per_job, per_node, _ in jobs:
        rule = comment.removeprefix("rule_").split("_wildcards_")[0]
        assert (per_job, per_node) == (("gres:gpu:1", "N/A") if rule in GPU_RULES else ("N/A", "N/A")), comment

    local_files = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local/results").rglob("*.h5"))
    slurm_files = sorted(p.relative_to(tmp_path / "slurm") for p in (tmp_path / "slurm/results").rglob("*.h5"))
    assert local_files == slurm_files and len(local_files) >= 9, (local_files, slurm_files)
    for rel in local_files:
        a, b = read_tensor_file(tmp_path / "local" / rel), read_tensor_file(tmp_path / "slurm" / rel)
        np.testing.assert_array_equal(a.x, b.x, err_msg=str(rel))  # bitwise: same code, threads and seed
        assert a.names == b.names and a.attrs == b.attrs, rel
    for dataset in config["datasets"]:
        for table in TABLES:
            a = pd.read_csv(tmp_path / "local/results" / dataset / table)
            b = pd.read_csv(tmp_path / "slurm/results" / dataset / table)
            pd.testing.assert_frame_equal(a, b, check_exact=True, obj=f"{dataset}/{table}")
