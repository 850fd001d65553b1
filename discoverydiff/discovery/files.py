"""Discovery over tensor files: inverted targets and ID latents in, accepted (and screened) latents,
the geometry table and the screening table out (rule ``discover``)."""

from __future__ import annotations

import logging

import pandas as pd
import torch

from ..errors import ConfigError, InputError
from .acceptance import CRITERIA, DEFAULT_TOLERANCE
from .candidates import GaussianPrior
from .geometry import latent_geometry
from .sampling import DiscoveryResult, discover

log = logging.getLogger(__name__)


def screen_oversample(cfg: dict) -> int:
    """``discovery.screen.oversample`` of a config section (1, no screening, when absent)."""
    oversample = (cfg.get("screen") or {}).get("oversample")
    oversample = 1 if oversample is None else int(oversample)
    if oversample < 1:
        raise ConfigError(f"discovery.screen.oversample must be at least 1, got {oversample}")
    return oversample


def screen_steps(cfg: dict, n_steps: int) -> tuple[int, bool]:
    """(decoding steps of the screening, whether they are the generation's own) from
    ``discovery.screen.preview_steps``: an integer of at least 2, or ``full`` for ``n_steps``."""
    steps = (cfg.get("screen") or {}).get("preview_steps") or 10
    if steps == "full":
        return int(n_steps), True
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ConfigError(f"discovery.screen.preview_steps must be an integer of at least 2 or 'full', got {steps!r}")
    return steps, False


def discover_from_files(latents_path, id_latents_path, discovered_path, geometry_path, cfg: dict,
                        seed: int = 0, model=None, options=None, screening_path=None,
                        tensors_path=None, calibrate_spectrum: bool = False) -> DiscoveryResult:
    """Run discovery on tensor files and write the accepted latents and the geometry table.

    Parameters
    ----------
    latents_path : inverted few-shot targets (rule ``invert``).
    id_latents_path : inverted base-model samples (rule ``sample_base``).
    discovered_path : output tensor file of accepted latents; datasets ``criteria``
        (N, 3) hold each accepted latent's criterion values, attrs the acceptance record.
    geometry_path : output CSV of :func:`latent_geometry` plus the acceptance windows.
    cfg : the config's ``discovery`` section (n_samples, n_ref, n_slerp, tolerance, scheme,
        min_weight, max_per_source, max_per_pair, prior_fit, prior_variance, max_candidates,
        batch_candidates, screen). ``screen: {oversample, preview_steps, select, restarts}`` with
        oversample > 1 (the workflow's default is 3; without the key, no screening) accepts
        oversample x n_samples latents and keeps the n_samples whose decoded previews fit the
        targets' (:mod:`.screening`); it needs ``model`` and ``options`` (the
        engine), and writes every candidate's verdict to ``screening_path``. With
        ``preview_steps: full`` the candidates are decoded with the generation's own walk and
        compared with the few-shot maps of ``tensors_path`` (the dataset's tensors.h5) instead
        of previews of the target latents. The screened-out latents stay in the output as
        dataset ``screened_out`` (names in the record).
    calibrate_spectrum : fields: decode the kept latents and fit the decoder's spectral tilt against the
        few-shot maps of ``tensors_path`` (:func:`discoverydiff.spectral.fit_calibration`); the record's
        ``spectral_calibration`` is applied to every decoded sample by rule ``sample_discovered``.
    """
    from ..store import TensorFileWriter, read_tensor_file, write_csv_atomic

    target = read_tensor_file(latents_path)
    ids = read_tensor_file(id_latents_path)
    if target.x.shape[1:] != ids.x.shape[1:]:
        raise ConfigError(f"target latents {target.x.shape[1:]} and ID latents {ids.x.shape[1:]} differ in shape")
    for key in ("t0", "n_steps", "model"):
        if target.attrs.get(key) != ids.attrs.get(key):
            log.warning("target and ID latents differ in %s (%r vs %r)", key, target.attrs.get(key),
                        ids.attrs.get(key))
    fit_to = cfg.get("prior_fit", "target")
    if fit_to not in ("target", "id"):
        raise ConfigError(f"discovery.prior_fit must be 'target' or 'id', got {fit_to!r}")
    scheme = cfg.get("scheme") or "pairs"
    prior = None
    if scheme == "prior":
        prior = GaussianPrior.fit(target.x if fit_to == "target" else ids.x, cfg.get("prior_variance", "scalar"),
                                  fit_to)
    t = torch.from_numpy(target.x)
    n_samples = int(cfg.get("n_samples", 32))
    oversample = screen_oversample(cfg)
    if oversample > 1 and (model is None or options is None or screening_path is None):
        raise ConfigError("discovery.screen.oversample > 1 decodes previews: it needs the base model, the run "
                          "options and a screening table path (or set oversample: 1)")
    reference = None
    if oversample > 1:  # settings checked before the search, so a bad one costs no time
        steps, full = screen_steps(cfg, int(target.attrs["n_steps"]))
        restarts = cfg["screen"].get("restarts")
        restarts = 20 if restarts is None else int(restarts)
        if restarts < 0:
            raise ConfigError(f"discovery.screen.restarts must be at least 0, got {restarts}")
        if full:
            if tensors_path is None:
                raise ConfigError("discovery.screen.preview_steps 'full' compares the decodes with the few-shot maps: "
                                  "it needs the dataset's tensors.h5")
            reference = read_tensor_file(tensors_path, split="fewshot").x
            if reference.shape[1:] != target.x.shape[1:]:
                raise InputError(tensors_path, f"few-shot maps {reference.shape[1:]} and target latents "
                                               f"{target.x.shape[1:]} differ in shape")
    result = discover(t, torch.from_numpy(ids.x), n_samples * oversample, seed=seed,
                      n_ref=int(cfg.get("n_ref", 10)), n_slerp=int(cfg.get("n_slerp", 20)),
                      tolerance=cfg.get("tolerance", DEFAULT_TOLERANCE), prior=prior,
                      max_candidates=int(cfg.get("max_candidates", 100_000)),
                      batch_candidates=int(cfg.get("batch_candidates", 1024)), target_names=target.names,
                      scheme=scheme, min_weight=cfg.get("min_weight"), max_per_source=cfg.get("max_per_source"),
                      max_per_pair=cfg.get("max_per_pair"))
    log.info("accepted %d latents from %d candidates (rate %.3g); windows %s, which %.0f%% of the targets pass",
             len(result.names), result.n_candidates, result.acceptance_rate,
             {c: tuple(round(v, 3) for v in result.targets.window(c)) for c in CRITERIA},
             100 * result.targets.target_pass_share)
    if result.targets.target_pass_share < 0.5:
        log.warning("only %.0f%% of the few-shot targets pass their own acceptance windows (discovery.tolerance %s): "
                    "the accepted latents come from a corner of the domain; a wider tolerance admits more of it",
                    100 * result.targets.target_pass_share, result.targets.tolerance)
    latents, names, criteria = result.latents, list(result.names), result.criteria
    screened_out, screening = None, None
    if oversample > 1:
        from .screening import STATISTICS, screen

        select_by = cfg["screen"].get("select") or "each"
        score_by = cfg["screen"].get("score") or "moments"
        record = None
        if target.attrs.get("normalization"):
            from ..physical import record_from_attrs

            record = record_from_attrs(target.attrs, latents_path)
        keep, screen_table, set_record = screen(model, options, int(target.attrs["t0"]), steps, latents, t,
                                                n_samples, names, target.names, select_by=select_by, record=record,
                                                seed=seed, reference_images=reference, restarts=restarts,
                                                score_by=score_by)
        keep_t = torch.from_numpy(keep)
        screened_out = (latents[~keep_t].numpy(), [n for n, k in zip(names, keep) if not k])
        latents, criteria = latents[keep_t], criteria[keep_t]
        names = [n for n, k in zip(names, keep) if k]
        scores = screen_table.loc[screen_table["set"] == "candidate", "score"].to_numpy()
        target_rows = screen_table[screen_table["set"] == "fewshot"]
        screening = {"oversample": oversample, "preview_steps": steps, "full_decodes": reference is not None,
                     "reference": "fewshot maps" if reference is not None else "fewshot previews",
                     "select": select_by, "score": score_by, "restarts": restarts if select_by == "set" else None,
                     "set_selection": set_record, "statistics": list(STATISTICS),
                     "n_candidates": int(len(keep)), "n_kept": int(keep.sum()),
                     "target_mean": {c: float(target_rows[c].mean()) for c in STATISTICS},
                     "target_std": {c: float(target_rows[c].std(ddof=1)) for c in STATISTICS},
                     "kept_score_max": float(scores[keep].max()),
                     "screened_out_names": screened_out[1]}
    elif screening_path is not None:
        from .screening import TABLE_COLUMNS

        screen_table = pd.DataFrame(columns=list(TABLE_COLUMNS))  # no screening
    record = {"n_candidates": result.n_candidates, "acceptance_rate": result.acceptance_rate,
              "pass_rate": {c: result.pass_counts[c] / max(result.n_candidates, 1) for c in CRITERIA},
              "target_mean": result.targets.mean, "target_std": result.targets.std,
              "tolerance": result.targets.tolerance, "target_pass_share": result.targets.target_pass_share,
              "criteria": list(CRITERIA), **result.settings}
    if scheme == "prior":
        record.update({"prior_fit": fit_to, "prior_variance": cfg.get("prior_variance", "scalar")})
    record["screening"] = screening or {"oversample": 1}
    record["spectral_calibration"] = None
    if calibrate_spectrum:  # fields: the decoder's spectral tilt, measured on the kept set (discoverydiff.spectral)
        from .screening import preview

        if model is None or options is None or tensors_path is None:
            raise ConfigError("spectral calibration decodes the kept latents: it needs the model, the run options and "
                              "the dataset's tensors.h5")
        decoded = preview(model, latents, int(target.attrs["t0"]), int(target.attrs["n_steps"]), options)
        record["spectral_calibration"] = fit_fewshot_calibration(decoded, tensors_path, seed)[0]
    if screened_out is not None:
        record["sources"] = [src for src, k in zip(result.settings["sources"], keep) if k]  # the kept latents'
    attrs = {k: target.attrs.get(k) for k in ("t0", "n_steps", "eta", "model", "normalization", "dataset", "wcs")}
    attrs.update({"seed": seed, "source": str(latents_path), "id_source": str(id_latents_path),
                  "acceptance": record})
    x = latents.numpy()
    with TensorFileWriter(discovered_path, x.shape, "latents", attrs) as out:
        out.write(0, x, names)
        out.add_dataset("criteria", criteria.numpy())
        if screened_out is not None:
            out.add_dataset("screened_out", screened_out[0])
    table = latent_geometry(t, torch.from_numpy(ids.x))
    windows = pd.DataFrame([{"statistic": f"window_{c}", "set": "acceptance", "units": "deg" if "angle" in c
                             else "latent units", "mean": result.targets.mean[c], "std": result.targets.std[c],
                             "min": result.targets.window(c)[0], "max": result.targets.window(c)[1],
                             "n": len(t)} for c in CRITERIA])
    accepted = pd.DataFrame([{"statistic": c, "set": "discovered", "units": windows["units"][k],
                              "mean": float(criteria[:, k].mean()), "std": float(criteria[:, k].std()),
                              "min": float(criteria[:, k].min()), "max": float(criteria[:, k].max()),
                              "n": len(names)} for k, c in enumerate(CRITERIA)])
    write_csv_atomic(pd.concat([table, windows, accepted], ignore_index=True), geometry_path)
    if screening_path is not None:
        write_csv_atomic(screen_table, screening_path)
    return result


def fit_fewshot_calibration(decoded, tensors_path, seed: int = 0):
    """The decoder's spectral tilt of ``decoded`` maps (N, C, H, W) in [-1, 1] against the dataset's few-shot
    maps (:func:`discoverydiff.spectral.fit_calibration`); returns (fit, the dataset's normalization record)."""
    from ..physical import record_from_attrs
    from ..spectral import fit_calibration
    from ..stats.sources import RealMaps
    from ..store import read_attrs

    norm = record_from_attrs(read_attrs(tensors_path), tensors_path)
    fit = fit_calibration(decoded, RealMaps(tensors_path, "fewshot", norm).array(), norm, seed=seed)
    log.info("spectral calibration: %s", fit)
    return fit, norm


def decode_discovered(model, latents_path, samples_path, settings, options, seed: int = 0, shard=(0, 1)):
    """Decode discovered latents into samples (:func:`discoverydiff.engine.generate_tensor_file`), with the
    spectral calibration their discovery record holds (``acceptance.spectral_calibration``, when it was
    applied) laid on every decoded image; the samples' attributes record it."""
    from ..engine import generate_tensor_file
    from ..store import read_attrs

    attrs = read_attrs(latents_path)
    fit = (attrs.get("acceptance") or {}).get("spectral_calibration") or {}
    postprocess = None
    if fit.get("applied"):  # discoverydiff.spectral: the decoder's tilt, measured by rule discover
        from ..physical import record_from_attrs
        from ..spectral import apply_calibration

        record = record_from_attrs(attrs, latents_path)
        postprocess = lambda x: apply_calibration(x, fit, record)  # noqa: E731
    return generate_tensor_file(model, latents_path, samples_path, settings, options, seed, kind="samples",
                                shard=tuple(shard), postprocess=postprocess,
                                extra_attrs={"spectral_calibration": fit or None})
