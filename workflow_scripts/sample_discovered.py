"""rule sample_discovered: decode one shard of the discovered latents into new target-domain samples."""

from discoverydiff.engine import generate_tensor_file
from discoverydiff.store import read_attrs
from discoverydiff.workflow import engine_from_params, run_step

sm = snakemake  # noqa: F821  (injected by Snakemake's script directive)


def step():
    model, settings, options, seed = engine_from_params(sm.params.engine, sm.input.model)
    attrs = read_attrs(sm.input.latents)
    fit = (attrs.get("acceptance") or {}).get("spectral_calibration") or {}
    postprocess = None
    if fit.get("applied"):  # discoverydiff.spectral: the decoder's tilt, measured by rule discover
        from discoverydiff.physical import record_from_attrs
        from discoverydiff.spectral import apply_calibration

        record = record_from_attrs(attrs, sm.input.latents)
        postprocess = lambda x: apply_calibration(x, fit, record)  # noqa: E731
    return generate_tensor_file(model, sm.input.latents, sm.output[0], settings, options, seed, kind="samples",
                                shard=tuple(sm.params.shard), postprocess=postprocess,
                                extra_attrs={"spectral_calibration": fit or None})


run_step(sm.log[0], step, threads=sm.threads)
