"""rules jacobian_in_domain and jacobian: Jacobian spectra of the base model's denoiser.

jacobian_in_domain: at the base model's own samples (``in_domain``), once for every dataset;
jacobian: at one dataset's few-shot targets (``fewshot``), written after the in-domain rows.
"""

import logging

import pandas as pd

from discoverydiff.diffusion import resolve_device
from discoverydiff.jacobian import jacobian_table
from discoverydiff.store import SPLIT_FEWSHOT, read_tensor_file, write_csv_atomic
from discoverydiff.workflow import engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    cfg = sm.params.jacobian
    model, _, _, seed = engine_from_params(sm.params.engine, sm.input.model)
    n = int(cfg["points"])
    if "tensors" in sm.input.keys():
        points = read_tensor_file(sm.input.tensors, split=SPLIT_FEWSHOT)
        set_name, earlier = "fewshot", pd.read_csv(sm.input.in_domain)
    else:
        points = read_tensor_file(sm.input.base_samples)
        set_name, earlier = "in_domain", None
    table = jacobian_table(model, {set_name: (points.x[:n], points.names[:n])}, cfg["timesteps"], k=int(cfg["k"]),
                           oversample=int(cfg["oversample"]), power_iterations=int(cfg["power_iterations"]),
                           batch=int(cfg["batch"]), energy=float(cfg["energy"]), seed=seed,
                           device=resolve_device(sm.params.engine["device"]),
                           memory_limit_mb=sm.params.engine.get("memory_limit_mb"))
    if earlier is not None:
        table = pd.concat([earlier, table], ignore_index=True)
    summary = table.groupby(["set", "t"])[["rank", "captured"]].median().unstack("t")
    logging.getLogger("discoverydiff").info("median rank and captured share by set and t:\n%s", summary.to_string())
    write_csv_atomic(table, sm.output[0])


run_step(sm.log[0], step, threads=sm.threads, job=sm)
