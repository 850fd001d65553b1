"""Every local GPU used: the model jobs of a run claim one device slot each (discoverydiff.devices), and the
workflow sizes threads, model-job slots and memory from the host (discoverydiff.jobs). No GPU is needed:
the devices are fake names, the jobs real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from discoverydiff import devices, jobs

REPO = Path(__file__).resolve().parents[1]

_JOB = """
import json, sys, time
from discoverydiff.devices import claim_slot
lock_dir, out, hold = sys.argv[1], sys.argv[2], float(sys.argv[3])
index, slot, handle = claim_slot(["GPU-aaaa", "GPU-bbbb", "GPU-cccc", "GPU-dddd"], lock_dir, per_device=1, poll_s=0.02)
start = time.time()
time.sleep(hold)
json.dump({"device": index, "slot": slot, "start": start, "end": time.time()}, open(out, "w"))
"""  # the lock goes when the process ends, as a workflow job's does


def test_eight_jobs_on_four_fake_devices_use_every_device_never_two_on_one(tmp_path):
    lock_dir = tmp_path / "locks"
    procs = [subprocess.Popen([sys.executable, "-c", _JOB, str(lock_dir), str(tmp_path / f"job{i}.json"), "1.0"])
             for i in range(8)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    runs = [json.loads((tmp_path / f"job{i}.json").read_text()) for i in range(8)]
    assert {r["device"] for r in runs} == {0, 1, 2, 3}  # every device used
    for device in range(4):
        spans = sorted((r["start"], r["end"]) for r in runs if r["device"] == device)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])), (device, spans)
    # never more jobs at once than devices, at any job's start
    for r in runs:
        assert sum(o["start"] <= r["start"] < o["end"] for o in runs) <= 4


def test_a_killed_job_frees_its_slot(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", _JOB, str(tmp_path), str(tmp_path / "a.json"), "60"])
    deadline = time.time() + 60
    while not list(tmp_path.glob("*.lock")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    taken = devices.try_claim(["GPU-aaaa"], tmp_path)
    assert taken is None  # held by the running job
    holder.kill()
    holder.wait()
    index, slot, handle = devices.try_claim(["GPU-aaaa"], tmp_path)
    assert (index, slot) == (0, 0)
    handle.close()


def test_slots_per_device_let_two_jobs_share_one(tmp_path):
    claims = [devices.try_claim(["GPU-a", "GPU-b"], tmp_path, per_device=2) for _ in range(5)]
    assert [(c[0], c[1]) for c in claims[:4]] == [(0, 0), (1, 0), (0, 1), (1, 1)]  # spread first, then share
    assert claims[4] is None
    for claim in claims[:4]:
        claim[2].close()


def test_resolve_device_claims_this_jobs_gpu_when_several_are_visible(monkeypatch, tmp_path):
    from discoverydiff.diffusion import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: None)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: f"fake{index}")
    monkeypatch.setattr(devices, "cuda_device_ids", lambda: ["GPU-x", "GPU-y", "GPU-z"])
    monkeypatch.setenv(devices.ENV_SLOT_DIR, str(tmp_path))
    monkeypatch.setattr(devices, "_HELD", {})
    first = devices.try_claim(["GPU-x"], tmp_path)  # another job holds the first device
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda", 1)  # once per process
    first[2].close()
    devices._HELD["handle"].close()


# --------------------------------------------------------------------------- what jobs ask for
def test_visible_gpus_follow_cuda_visible_devices(monkeypatch, tmp_path):
    fake = tmp_path / "gpus"
    for i in range(4):
        (fake / f"0000:0{i}:00.0").mkdir(parents=True)
    real = Path
    monkeypatch.setattr(jobs, "Path", lambda p: fake if p == "/proc/driver/nvidia/gpus" else real(p))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert jobs.gpu_count() == 4
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,3")
    assert jobs.gpu_count() == 2
    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert jobs.gpu_count() == 0
    assert jobs.gpu_count("cpu") == 0


def test_thread_policy_follows_cores_and_devices():
    assert (jobs.model_slots(2, 0), jobs.torch_threads(None, 2, 0)) == (2, 1)  # CPU host: a job per core
    assert (jobs.model_slots(16, 4), jobs.torch_threads(None, 16, 4)) == (4, 4)  # a job per GPU
    assert jobs.torch_threads(None, 64, 2) == 4 and jobs.torch_threads(None, 2, 4) == 1
    assert jobs.torch_threads(3, 16, 4) == 3  # the config wins


def _paper(**edits):
    from snakemake.utils import update_config, validate

    config: dict = {}
    for name in ("model_ddpm_celebahq.yaml", "data_radiation.yaml"):
        update_config(config, yaml.safe_load((REPO / "config" / "paper" / name).read_text()))
    update_config(config, edits)
    validate(config, str(REPO / "config" / "schema.yaml"))
    return config


def test_model_rules_memory_grows_with_their_batch_by_the_measured_need():
    small = jobs.rule_memory("invert", _paper(diffusion={"batch_size": 8}), gpu=False)
    large = jobs.rule_memory("invert", _paper(diffusion={"batch_size": 24}), gpu=False)
    assert large["mem_mb"] - small["mem_mb"] == pytest.approx(16 * jobs.MARGIN * jobs.PER_ITEM_MB["eval"], abs=2)
    on_gpu = jobs.rule_memory("invert", _paper(diffusion={"batch_size": 8}), gpu=True)
    assert on_gpu["gpu_mem_mb"] > on_gpu["mem_mb"] and small["gpu_mem_mb"] == 0


def test_jacobian_gpu_memory_covers_the_h200_measurement():
    """benchmarks/README.md: 61.5 GiB peak for the DDPM-256 Jacobian at 21 products per pass on an H200."""
    need = jobs.rule_memory("jacobian_in_domain", _paper(jacobian={"batch": 21}), gpu=True)["gpu_mem_mb"]
    assert 61.5 * 1024 <= need <= 1.6 * 61.5 * 1024


def test_a_local_run_shares_out_the_host(tmp_path):
    """The plain command: as many model jobs at once as cores on a CPU-only host (GPUs on a GPU host),
    one thread each, the host's RAM shared out by mem_mb; --resources on the command line wins."""
    from test_workflow import TINY_DEMO, snakemake

    gpus = jobs.gpu_count()
    run = snakemake(tmp_path / "plain", TINY_DEMO, "resources/demo/radiation")  # a quick real run
    assert run.returncode == 0, run.stderr[-2000:]
    assert f'gpu=Resource("gpu", {jobs.model_slots(2, gpus)})' in run.stdout + run.stderr
    assert f'mem_mb=Resource("mem_mb", {jobs.host_memory_mb()})' in run.stdout + run.stderr
    given = snakemake(tmp_path / "given", TINY_DEMO, "resources/demo/radiation", "--resources", "gpu=1")
    assert 'gpu=Resource("gpu", 1)' in given.stdout + given.stderr
    dry = snakemake(tmp_path / "plain", TINY_DEMO, "-n", "results/radiation/latents.h5")
    invert = (dry.stdout + dry.stderr).split("rule invert:")[1].split("\n\n")[0]
    assert "gpu=1" in invert and "mem_mb=" in invert
    if not gpus:  # one thread (Snakemake prints none); the numeric rules keep their 2
        assert "threads:" not in invert and "threads: 2" in dry.stdout + dry.stderr


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two or more CUDA devices")
def test_jobs_on_a_multi_gpu_host_take_different_devices(tmp_path):
    """On real GPUs: as many jobs as devices, started together, each resolve a different cuda:i."""
    code = ("import sys, time, torch; from discoverydiff.diffusion import resolve_device; d = resolve_device('auto'); "
            "torch.ones(1, device=d); print(torch.cuda.get_device_properties(d).uuid); sys.stdout.flush(); "
            "time.sleep(3)")
    env = dict(__import__("os").environ, DISCOVERYDIFF_SLOT_DIR=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(torch.cuda.device_count())]
    uuids = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(uuids)) == len(uuids)
