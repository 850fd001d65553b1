"""rule jacobian: Jacobian spectra of the base model's denoiser at few-shot targets and in-domain points."""

import logging

from discoverydiff.diffusion import resolve_device
from discoverydiff.jacobian import jacobian_table
from discoverydiff.store import SPLIT_FEWSHOT, read_tensor_file, write_csv_atomic
from discoverydiff.workflow import engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    cfg = sm.params.jacobian
    model, _, _, seed = engine_from_params(sm.params.engine, sm.input.model)
    n = int(cfg["points"])
    targets = read_tensor_file(sm.input.tensors, split=SPLIT_FEWSHOT)
    in_domain = read_tensor_file(sm.input.base_samples)
    sets = {"fewshot": (targets.x[:n], targets.names[:n]), "in_domain": (in_domain.x[:n], in_domain.names[:n])}
    table = jacobian_table(model, sets, cfg["timesteps"], k=int(cfg["k"]), oversample=int(cfg["oversample"]),
                           power_iterations=int(cfg["power_iterations"]), batch=int(cfg["batch"]),
                           energy=float(cfg["energy"]), seed=seed, device=resolve_device(sm.params.engine["device"]))
    summary = table.groupby(["set", "t"])["rank"].median().unstack("t")
    logging.getLogger("discoverydiff").info("median numerical rank by set and t:\n%s", summary.to_string())
    write_csv_atomic(table, sm.output[0])


run_step(sm.log[0], step)
