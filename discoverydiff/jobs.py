"""What each job of the workflow asks the scheduler for: threads, model-job slots, memory.

rules/common.smk calls these while Snakemake parses the workflow, so this module uses the
standard library alone (the interpreter Snakemake runs in needs neither torch nor numpy).

**Threads and slots** (:func:`gpu_count`, :func:`torch_threads`, :func:`model_slots`): the
model rules ask for one unit of the ``gpu`` resource each. On a host with GPUs a local run gets
as many units as visible devices (one model job per device, :mod:`discoverydiff.devices`) and
each job ``cores / devices`` threads (at most 4: the GPU does the work); on a CPU-only host as
many units as ``--cores``, and one thread per model job: single-threaded torch jobs side by side
do more work than one job on every core (1.22x on 2 cores, benchmarks/README.md).

**Memory** (:func:`rule_memory`): a model job's need is its process (torch and the libraries),
its weights, and its batch times the per-item need of its kind of work. The per-item needs
below were measured (``discoverydiff.memory.measure_peak_mb``, fp32, CPU) on the DDPM-256
architecture of the paper's diffusers checkpoints (base width 128, 113.7 M parameters) at
256x256, and scale with the model's base width times the image's pixels; they hold on a GPU
(the Jacobian's 3.5 GB per product here against 3.0 GB on an H200, benchmarks/README.md), where
bf16 autocast needs less. The job itself then fits its batch to what it really has
(:mod:`discoverydiff.memory`): these numbers only let the scheduler start no job that cannot fit.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

#: Measured per-item need (MB) at the reference model and resolution: DDPM-256 architecture (base
#: width 128), 3x256x256, fp32, CPU (benchmarks/README.md, "Memory of the model rules").
PER_ITEM_MB = {
    "eval": 403.0,  # a no-grad forward and its DDIM step (invert, decode, previews)
    "jacobian": 3480.0,  # one Jacobian product: a jvp while a batch's vjp holds its activations
    "train": 2232.0,  # a forward and backward pass of one image
}
REFERENCE = {"width": 128, "pixels": 256 * 256, "weights_mb": 455.0}
#: Resident memory of a model job before its model and data: Python, torch, diffusers, h5py (measured
#: 413 MB), with room for the CUDA libraries on a GPU host.
PROCESS_MB = {"cpu": 1000.0, "gpu": 2500.0}
#: CUDA context and cuDNN workspaces on the device.
GPU_OVERHEAD_MB = 1000.0
#: Safety factor on the measured needs (allocator fragmentation, other libraries' buffers).
MARGIN = 1.25
#: Rules that run the model, and the kind of their batched work and the config key of their batch.
MODEL_RULES = {
    "invert": "eval", "reconstruct": "eval", "sample_base": "eval", "sample_discovered": "eval",
    "discover": "eval", "novelty_sweep": "eval", "finetune": "train", "train_base": "train",
    "jacobian": "jacobian", "jacobian_in_domain": "jacobian", "sample_empirical": "eval",
    # discovery's settings search and its controls decode as discover does; seeds also fine-tunes
    "settings": "eval", "discover_prior": "eval", "sample_control": "eval", "seeds": "train",
}


# ----------------------------------------------------------------------------- devices and threads
def gpu_count(device_setting: str = "auto") -> int:
    """Visible NVIDIA GPUs of this host, found without torch (0 for ``device: cpu``).

    The driver's ``/proc/driver/nvidia/gpus`` (else ``nvidia-smi -L``), lowered to the devices
    ``CUDA_VISIBLE_DEVICES`` names when it is set (empty or -1: none).
    """
    if device_setting == "cpu":
        return 0
    proc = Path("/proc/driver/nvidia/gpus")
    if proc.is_dir():
        present = len(list(proc.iterdir()))
    elif shutil.which("nvidia-smi"):
        try:
            listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        present = sum(1 for line in listing.splitlines() if line.startswith("GPU "))
    else:
        present = 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        names = [v.strip() for v in visible.split(",") if v.strip()]
        if not names or names[0] == "-1":
            return 0
        return min(len(names), present)
    return present


def jobs_per_gpu() -> int:
    try:
        return max(1, int(os.environ.get("DISCOVERYDIFF_JOBS_PER_GPU", "1")))
    except ValueError:
        return 1


def torch_threads(configured: int | None, cores: int | None, gpus: int) -> int:
    """Threads of a model job: the config's ``threads.torch`` when set; else cores per GPU (1 to 4)
    on a GPU host, 1 on a CPU-only host."""
    if configured is not None:
        return int(configured)
    if gpus:
        return max(1, min(4, (cores or 4) // (gpus * jobs_per_gpu())))
    return 1


def cpu_model_threads(cores: int | None, slots: int, host_mb: float, rule_mb: float) -> int:
    """Threads of a model job on a CPU-only host: the cores shared among the model jobs that can run
    at once, by the ``gpu`` slots and by memory (a 256 px job whose mem_mb leaves no room for a
    second one gets every core; the demo's small jobs one each)."""
    at_once = max(1, min(int(slots), int(host_mb // max(rule_mb, 1.0))))
    return max(1, int(cores or 1) // at_once)


def model_slots(cores: int | None, gpus: int) -> int:
    """Model jobs a local run lets run at once (the ``gpu`` resource): one per GPU slot, or one per core."""
    if gpus:
        return gpus * jobs_per_gpu()
    return max(1, int(cores or 1))


def host_memory_mb(share: float = 0.9) -> int:
    """``share`` of this host's RAM (MB): what a local run shares out among its jobs' mem_mb."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(int(line.split()[1]) / 1024 * share)
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * share)
    except (ValueError, OSError, AttributeError):
        return 2**31  # unknown: no limit


# ----------------------------------------------------------------------------- memory
def _checkpoint_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return [p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".pth", ".ckpt")]
    return []


def model_description(model_cfg: dict) -> dict:
    """Base width and weights (MB) of the configured model, from its files where they exist.

    diffusers / trained: ``block_out_channels[0]`` of the checkpoint's config.json (the small
    UNet of train_base without one); adm: ``adm_flags.num_channels``; closed-form models: none.
    The weights' size is the checkpoint's on disk, else scaled from the reference by width^2.
    """
    source = model_cfg.get("source", "trained")
    if source in ("analytic_gaussian", "empirical"):
        return {"width": 0, "weights_mb": 0.0}
    path = Path(model_cfg["path"]) if model_cfg.get("path") else None
    width = None
    if source == "adm":
        width = int((model_cfg.get("adm_flags") or {}).get("num_channels", 128))
    elif path is not None and (path / "config.json").is_file():
        try:
            width = int(json.loads((path / "config.json").read_text())["block_out_channels"][0])
        except (ValueError, KeyError, IndexError, TypeError):
            width = None
    if width is None:
        width = 32 if source == "trained" else REFERENCE["width"]  # train_base's small UNet starts at 32
    files = _checkpoint_files(path) if path is not None else []
    weights = sum(f.stat().st_size for f in files) / 2**20 if files else None
    if not weights:
        weights = REFERENCE["weights_mb"] * (width / REFERENCE["width"]) ** 2
    return {"width": width, "weights_mb": float(weights)}


def rule_batch(rule: str, config: dict) -> int:
    """The configured batch (a maximum) of a model rule's batched work."""
    kind = MODEL_RULES[rule]
    if kind == "jacobian":
        jac = config.get("jacobian", {})
        return max(1, min(int(jac.get("batch", 8)), int(jac.get("k", 32)) + int(jac.get("oversample", 10))))
    if rule in ("finetune", "seeds"):  # seeds fine-tunes as finetune does; its decodes need less
        return int(config.get("baseline", {}).get("batch_size", 16))
    if rule == "train_base":
        return int(config.get("model", {}).get("train", {}).get("batch_size", 64))
    return int(config.get("diffusion", {}).get("batch_size", 16))


def per_item_mb(kind: str, width: int, resolution: int, channels: int = 3) -> float:
    """Measured per-item need, scaled from the reference to this base width and resolution."""
    if width <= 0:  # closed-form denoisers: a few image-sized arrays per item
        return 16 * channels * resolution**2 * 4 / 2**20
    return PER_ITEM_MB[kind] * (width / REFERENCE["width"]) * (resolution**2 / REFERENCE["pixels"])


def _oversample(discovery: dict, own: dict) -> int:
    """The largest screening oversample a discovery job of this dataset may run: the configured
    one, else the largest of the settings search's grid, else the search's fallback (3)."""
    for section in (own, discovery):
        value = (section.get("screen") or {}).get("oversample")
        if value is not None:
            return int(value)
    grids = [(section.get("search") or {}).get("grid") or {} for section in (own, discovery)]
    values = [int(v) for grid in grids for v in (grid.get("screen.oversample") or [])]
    return max(values, default=3)


def _data_mb(rule: str, config: dict, dataset: str | None, image_mb: float) -> float:
    """Host memory of the data a model rule holds whole (the rest is streamed in batches)."""
    diffusion, discovery = config.get("diffusion", {}), config.get("discovery", {})
    n_base = int(diffusion.get("n_base_samples", 64))
    own = (config.get("datasets", {}).get(dataset) or {}) if dataset else {}
    n_fewshot = int(own.get("n_fewshot", 16))
    if rule in ("discover", "discover_prior", "settings", "seeds"):
        # measured: 4x the target and in-domain latents plus 1 GB (benchmarks/README.md), and the
        # decoded candidates of the screening
        decoded = _oversample(discovery, own.get("discovery") or {}) * int(discovery.get("n_samples", 32)) + n_fewshot
        return 4 * (n_fewshot + n_base) * image_mb + 2 * decoded * image_mb + 1000.0
    if rule in ("jacobian", "jacobian_in_domain"):
        return 2 * max(n_base, n_fewshot) * image_mb  # the point set is read whole
    if rule in ("finetune", "sample_empirical"):
        return 4 * n_fewshot * image_mb
    return 0.0


def rule_memory(rule: str, config: dict, gpu: bool, dataset: str | None = None) -> dict:
    """``mem_mb`` (host) and ``gpu_mem_mb`` (device; 0 without a GPU) of one model rule's job.

    On the CPU everything is host memory: process + weights + batch x per-item need (x
    :data:`MARGIN`); training adds the optimiser's two copies of the weights and the gradients.
    On a GPU the batch and weights are device memory and the host keeps the process and the
    data the rule holds whole (:func:`_data_mb`: rule discover's latents and decodes, the
    Jacobian's point set, the few-shot set).
    """
    model = config.get("model", {})
    description = model_description(model)
    resolution, channels = int(model.get("resolution", 32)), int(model.get("channels", 3))
    kind = MODEL_RULES[rule]
    batch = rule_batch(rule, config)
    weights = description["weights_mb"]
    if rule == "sample_empirical":  # the few-shot set's closed-form denoiser, on the CPU: no network
        weights, description, gpu = 0.0, {"width": 0}, False
    state = 3 * weights if kind == "train" else 0.0
    work = batch * per_item_mb(kind, description["width"], resolution, channels)
    data = _data_mb(rule, config, dataset, channels * resolution**2 * 4 / 2**20)
    if gpu:
        device = MARGIN * (work + state + weights) + GPU_OVERHEAD_MB
        host = PROCESS_MB["gpu"] + weights + data
        return {"mem_mb": int(math.ceil(host)), "gpu_mem_mb": int(math.ceil(device))}
    host = PROCESS_MB["cpu"] + MARGIN * (work + state + weights) + data
    return {"mem_mb": int(math.ceil(host)), "gpu_mem_mb": 0}


__all__ = ["MODEL_RULES", "PER_ITEM_MB", "cpu_model_threads", "gpu_count", "host_memory_mb", "model_description",
           "model_slots", "per_item_mb", "rule_batch", "rule_memory", "torch_threads"]
