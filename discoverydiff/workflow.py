"""Glue between Snakemake's ``script:`` directive and the library.

:func:`run_step` gives every workflow script the same behaviour: log records and progress
bars go to the rule's ``log:`` file, and an expected failure (bad input, bad config)
ends the job with a one-line message naming the file and the problem, on the console and
in the log, and a non-zero exit, instead of a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import DiscoveryDiffError

#: The thread-count variables of the numerical libraries (OpenMP, MKL, OpenBLAS, Accelerate, numexpr).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS")


def apply_threads(threads: int) -> None:
    """Hold this process to ``threads`` threads: torch's intra-op pool, the BLAS/OpenMP pools
    already loaded (threadpoolctl) and the environment of libraries loaded later."""
    import threadpoolctl

    threads = max(1, int(threads))
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    threadpoolctl.threadpool_limits(threads)
    if "torch" in sys.modules:  # else torch reads OMP_NUM_THREADS when it is imported
        sys.modules["torch"].set_num_threads(threads)


def run_step(log_path: str | Path | None, step: Callable[[], object], threads: int | None = None,
             job=None) -> object:
    """Run ``step()`` with logging to ``log_path``; exit 1 on a :class:`DiscoveryDiffError`.

    ``threads`` (the rule's ``threads``) is applied first (:func:`apply_threads`). ``job`` (the
    script's ``snakemake`` object) names the rule, and lends its ``mem_mb`` resource as the
    memory a CPU job's batches may fill, to :mod:`discoverydiff.memory`."""
    if threads is not None:
        apply_threads(threads)
    if job is not None:
        from .memory import set_job

        set_job(getattr(job, "rule", None), getattr(getattr(job, "resources", None), "mem_mb", None))
    console = sys.stderr
    handlers: list[logging.Handler] = [logging.StreamHandler(console)]
    handlers[0].setLevel(logging.WARNING)
    log_file = None
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log_file = open(log_path, "w", buffering=1)
        handlers.append(logging.StreamHandler(log_file))
        sys.stderr = log_file  # tqdm and warnings write here
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if threads is not None:
        logging.getLogger("discoverydiff").info("threads: %d", threads)
    try:
        result = step()
        if "torch" in sys.modules:
            logging.getLogger("discoverydiff").info("torch threads: %d", sys.modules["torch"].get_num_threads())
        _log_peak_memory()
        return result
    except DiscoveryDiffError as exc:
        logging.getLogger("discoverydiff").error("%s", exc)
        if log_file is not None:
            print(f"discoverydiff error: {exc}", file=console)
        sys.exit(1)
    finally:
        sys.stderr = console
        if log_file is not None:
            log_file.close()


def _log_peak_memory() -> None:
    """The job's peak host memory (and GPU memory, where torch used CUDA) in its log: what a rule
    really took (Snakemake's benchmark files sample the memory every few seconds)."""
    from .memory import job_peak_mb

    peak = job_peak_mb()
    text = f"peak memory: {peak:.0f} MB resident" if peak is not None else ""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        gpu = torch.cuda.max_memory_allocated() / 2**20
        text += f", {gpu:.0f} MB on {torch.cuda.get_device_name()} (since the last batch plan)"
    if text:
        logging.getLogger("discoverydiff").info("%s", text)


def model_config(params: dict, model_inputs=()) -> dict:
    """The ``model`` section of a rule's ``engine`` params, with rule train_base's directory as the
    path of ``source: trained`` without one."""
    model_cfg = dict(params["model"])
    if model_cfg.get("source") == "trained" and not model_cfg.get("path") and model_inputs:
        model_cfg["path"] = str(model_inputs[0])
    return model_cfg


def engine_from_params(params: dict, model_inputs=()) -> tuple:
    """(model, DDIM settings, run options, seed) from a rule's ``engine`` params.

    ``model_inputs`` are the rule's model files; for ``source: trained`` without a
    ``path`` the first is the directory rule ``train_base`` wrote.
    """
    from .models import load_model

    model = load_model(model_config(params, model_inputs), seed=int(params["seed"]))
    return (model, *run_settings(params), int(params["seed"]))


def discovery_section(cfg: dict, settings_path=None) -> dict:
    """The discovery section a rule uses: the config's own values, then the choice of rule ``settings``
    (``settings.yaml``, when the dataset's settings are searched), then the fallbacks
    (:func:`discoverydiff.discovery.search.resolve`)."""
    from .discovery.search import read_choice, resolve

    return resolve(cfg, read_choice(settings_path) if settings_path else None)


def run_settings(params: dict) -> tuple:
    """(DDIM settings, run options) from a rule's ``engine`` params, without loading the model."""
    from .engine import settings_from_config

    settings, options = settings_from_config(params["diffusion"])
    options.device, options.precision = params["device"], params["precision"]
    options.memory_limit_mb = params.get("memory_limit_mb")
    return settings, options


#: Distributions whose versions the report records (those that shape the numbers).
PROVENANCE_PACKAGES = ("discoverydiff", "snakemake", "torch", "diffusers", "safetensors", "numpy", "scipy", "astropy",
                       "h5py", "pandas", "matplotlib", "scikit-image", "statmorph", "photutils", "pillow")


def write_provenance(config: dict, config_path: str | Path, software_path: str | Path) -> None:
    """The run's config as YAML and a table of software versions (package, version), atomically.

    The table also names the Python version, the platform, torch's CUDA build and the
    visible GPU (or ``none``), so a report says on what the numbers were made.
    """
    import platform
    from importlib import metadata

    import pandas as pd
    import torch
    import yaml

    from .store import atomic_path, write_csv_atomic

    rows = [("python", platform.python_version()), ("platform", platform.platform())]
    for name in PROVENANCE_PACKAGES:
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    rows.append(("torch.cuda", str(torch.version.cuda)))
    rows.append(("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"))
    write_csv_atomic(pd.DataFrame(rows, columns=["package", "version"]), software_path, sep="\t")
    with atomic_path(config_path) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
