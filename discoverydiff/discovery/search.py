"""Discovery's settings chosen on the validation maps, not by hand (rule ``settings``, ``settings.yaml``).

Which discovery settings serve a dataset (the slerp weights, the screening) depends on the data.
Choosing them by the numbers that are then reported makes those numbers evidence of nothing, so
here every setting of a small grid (``discovery.search.grid``) is run as rule ``discover`` and
``sample_discovered`` would run it, on the few-shot maps, and its decoded set is measured against
the **validation** maps only (:func:`discoverydiff.stats.dataset_statistics` with
``reference="validation"``; the test maps are never read). The objective:

- **fidelity**: the mean over the domain statistics (power spectrum distance and slope, PDF W1
  and the four moments of fields; the statmorph W1s and failed fits of galaxies) of
  (distance / unit)^2, the unit of each statistic being the spread of the few-shot maps' own
  distance to the validation maps over bootstrap draws of both: the noise of the statistic at
  these sizes, so no statistic needs a weight;
- subject to the **floors**: near-copy share at most ``max_near_copy_share`` (1/16), W1 of d1/d2 to
  the validation maps' at most ``max_novelty_w1`` (0.15), k-NN recall of the validation maps at
  least the few-shot maps' own recall minus ``recall_margin`` (0.2). The near-copy share is the
  set's own (each sample against the few-shot maps) and is held exactly; the other two are estimates
  against a dozen or so validation maps, and count as missed only when they miss by more than their
  standard error (the spread of the statistic over bootstrap draws of the set and the validation
  maps, ``discovery.search.bootstrap`` of them). Held exactly, a miss smaller than that noise decided:
  on the demo's radiation maps the screened setting, whose objective was a fifth of the unscreened
  one's, lost on a novelty W1 of 0.153 against the floor's 0.15, with a standard error of about 0.03.

The lowest objective among the settings that meet every floor wins; when none does, the one
that misses them least (the sum of its misses, each in units of its floor), and the record says
so. A knob written in the config (a non-null value in ``discovery`` or ``datasets.NAME.discovery``)
is never searched: the config wins. ``settings.yaml`` records the chosen setting, what the
config fixed, every setting's statistics, objective and floors, and what the search cost.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import ConfigError

log = logging.getLogger(__name__)

#: Discovery's searchable knobs and the value each takes when neither the config nor a search sets it.
FALLBACK = {
    "scheme": "pairs",
    "min_weight": None,  # the scheme's own default (0.4 for pairs, 0 for prior)
    "screen.oversample": 3,
    "screen.preview_steps": 10,
    "screen.select": "each",
    "screen.score": "moments",
    "spectrum": None,  # by the dataset's kind: calibrate fields, leave galaxies (calibrate_spectrum)
}
#: The floors of the novelty and diversity statistics (see the module docstring).
FLOORS = {"max_near_copy_share": 1.0 / 16.0, "max_novelty_w1": 0.15, "recall_margin": 0.2}


def _get(cfg: dict, dotted: str):
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set(cfg: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    node = cfg
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def config_fixed(discovery_cfg: dict) -> dict:
    """The knobs the config sets itself (non-null), dotted names -> values: the search leaves them alone."""
    return {knob: _get(discovery_cfg, knob) for knob in FALLBACK if _get(discovery_cfg, knob) is not None}


def resolve(discovery_cfg: dict, chosen: dict | None = None) -> dict:
    """The discovery section a run uses: the config's own values, then the search's choice, then
    :data:`FALLBACK`, knob by knob (dotted names); the rest of the section as it is."""
    out = {key: (dict(value) if isinstance(value, dict) else value) for key, value in discovery_cfg.items()}
    out.pop("search", None)
    for knob, fallback in FALLBACK.items():
        if _get(discovery_cfg, knob) is not None:
            continue
        value = (chosen or {}).get(knob, fallback)
        if value is not None:
            _set(out, knob, value)
    return out


def calibrate_spectrum(discovery_cfg: dict, kind: str) -> bool:
    """Whether discovery fits the decoder's spectral tilt (:mod:`discoverydiff.spectral`): ``discovery.spectrum``
    (``calibrate`` or ``none``), by default for fields (whose spectra the decoder flattens) and not for galaxies."""
    choice = discovery_cfg.get("spectrum") or ("calibrate" if kind == "field" else "none")
    if choice not in ("calibrate", "none"):
        raise ConfigError(f"discovery.spectrum must be 'calibrate' or 'none', got {choice!r}")
    return choice == "calibrate"


def read_choice(path) -> dict:
    """The chosen knobs of a ``settings.yaml`` (dotted names -> values), or an InputError naming it."""
    import yaml

    from ..errors import InputError

    try:
        record = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, f"is not a readable settings file ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("chosen"), dict):
        raise InputError(path, "has no 'chosen' settings (write it with rule settings)")
    unknown = set(record["chosen"]) - set(FALLBACK)
    if unknown:
        raise InputError(path, f"chooses unknown discovery knobs {sorted(unknown)}")
    return record["chosen"]


def grid_settings(grid: dict, fixed: dict) -> list[dict]:
    """Every combination of the grid's values (dotted knob -> list), the config's fixed knobs left out."""
    unknown = set(grid) - set(FALLBACK)
    if unknown:
        raise ConfigError(f"discovery.search.grid names unknown knobs {sorted(unknown)}; known: {sorted(FALLBACK)}")
    searched = {knob: list(values) for knob, values in grid.items() if knob not in fixed}
    for knob, values in searched.items():
        if not values:
            raise ConfigError(f"discovery.search.grid.{knob} lists no value")
    knobs = sorted(searched)
    return [dict(zip(knobs, combo)) for combo in itertools.product(*(searched[k] for k in knobs))] or [{}]


def _objective(row: dict, units: dict) -> float:
    from ..stats.resampling import badness

    terms = [float(badness(stat, value)) / units[stat] for stat, value in row.items()
             if stat in units and np.isfinite(value)]
    return float(np.mean(np.square(terms))) if terms else float("inf")


def _misses(row: dict, floors: dict, recall_floor: float, noise: dict | None = None) -> dict:
    """How far a setting's statistics are past each floor beyond their standard error ``noise`` (statistic ->
    standard error; the near-copy share has none: it is the set's own), in units of the floor (0: met)."""
    noise = {k: float(v) for k, v in (noise or {}).items() if np.isfinite(v)}
    near = float(row.get("near_copy_share", np.nan))
    w1 = float(row.get("novelty_w1", np.nan))
    recall = float(row.get("recall", np.nan))
    return {"near_copy_share": max(0.0, near - floors["max_near_copy_share"]) / floors["max_near_copy_share"]
            if np.isfinite(near) else 0.0,
            "novelty_w1": max(0.0, w1 - noise.get("novelty_w1", 0.0) - floors["max_novelty_w1"])
            / floors["max_novelty_w1"] if np.isfinite(w1) else 0.0,
            "recall": max(0.0, recall_floor - recall - noise.get("recall", 0.0)) / max(recall_floor, 1e-9)
            if np.isfinite(recall) and np.isfinite(recall_floor) else 0.0}


def _interval_spread(row) -> float:
    """The standard error a comparison row's 95% bootstrap interval implies: half its width / 1.96."""
    return float((row["ci_high"] - row["ci_low"]) / (2 * 1.96))


def _standard_errors(table, statistics=("novelty_w1", "recall")) -> dict:
    """Standard error of the discovered set's ``statistics`` from the comparison's bootstrap interval."""
    rows = table[(table["set"] == "discovered") & table["statistic"].isin(statistics)].set_index("statistic")
    return {stat: _interval_spread(row) for stat, row in rows.iterrows()}


def noise_units(tensors_path, kind: str, stats_cfg: dict, morphology_paths=None, n_boot: int = 200,
                seed: int = 0) -> tuple[dict, dict]:
    """(unit per domain statistic, the few-shot maps' own row) against the validation maps: each unit is
    the spread (half the 95% interval / 1.96) of the few-shot maps' distance over bootstrap draws of both."""
    from ..stats import dataset_statistics
    from ..stats.resampling import NOT_DOMAIN, direction

    table = dataset_statistics(tensors_path, {}, kind, {**stats_cfg, "bootstrap": n_boot, "permutations": 0,
                                                        "seed": seed},
                               morphology_paths=morphology_paths, reference="validation").comparison
    own = table[table["set"] == "fewshot"].set_index("statistic")
    units = {}
    for stat, row in own.iterrows():
        if stat in NOT_DOMAIN or direction(stat) is None:
            continue
        spread = _interval_spread(row)
        if np.isfinite(spread) and spread > 0:
            units[stat] = float(spread)
    if not units:
        raise ConfigError(f"{tensors_path}: the few-shot and validation maps give no spread of any domain statistic "
                          "to measure the settings with (too few validation maps?)")
    return units, own["value"].to_dict()


def choose_settings(tensors_path, latents_path, id_latents_path, model, settings, options, discovery_cfg: dict,
                    stats_cfg: dict, kind: str, seed: int = 0, morphology_paths=None, workdir=None) -> dict:
    """Run the grid of ``discovery_cfg["search"]`` on the few-shot maps, measure every setting against the
    validation maps, and return the ``settings.yaml`` record (see the module docstring)."""
    from ..stats import dataset_statistics, morphology_of_set
    from .files import decode_discovered, discover_from_files
    from .sampling import TooFewAccepted

    search = dict(discovery_cfg.get("search") or {})
    floors = {**FLOORS, **(search.get("floors") or {})}
    fixed = config_fixed(discovery_cfg)
    candidates = grid_settings(search.get("grid") or {}, fixed)
    n_samples = int(search.get("n_samples") or discovery_cfg.get("n_samples", 16))
    n_boot = int(search.get("bootstrap", 200))
    start = time.perf_counter()
    units, own = noise_units(tensors_path, kind, stats_cfg, morphology_paths, seed=seed)
    recall_floor = float(own.get("recall", np.nan)) - floors["recall_margin"]
    rows, forwards = [], 0
    with tempfile.TemporaryDirectory(prefix="settings_", dir=workdir) as tmp:
        for position, setting in enumerate(candidates):
            cfg = resolve({**discovery_cfg, "n_samples": n_samples}, setting)
            work = Path(tmp) / f"setting_{position}"
            row = {"setting": setting, "resolved": {k: _get(cfg, k) for k in FALLBACK}}
            try:
                # the spectral calibration is fitted below on the decoded set itself (rule discover decodes
                # the kept latents once more to fit it: here that would decode them twice)
                result = discover_from_files(latents_path, id_latents_path, work / "latents.h5", work / "geometry.csv",
                                             cfg, seed, model=model, options=options,
                                             screening_path=work / "screening.csv", tensors_path=tensors_path,
                                             calibrate_spectrum=False)
            except TooFewAccepted as exc:
                log.warning("setting %s: %s", setting, exc)
                rows.append({**row, "error": str(exc), "objective": float("inf"), "feasible": False})
                continue
            decode_discovered(model, work / "latents.h5", work / "samples.h5", settings, options, seed)
            if calibrate_spectrum(cfg, kind):
                row["spectral_calibration"] = _calibrate_in_place(work / "samples.h5", tensors_path, seed)
            screening = result.settings  # acceptance settings; the screening record is in the file
            forwards += _forwards(work / "latents.h5", work / "samples.h5")
            morphology = dict(morphology_paths or {})
            if kind == "galaxy":
                morphology_of_set(tensors_path, "samples", work / "samples.h5", stats_cfg.get("morphology")).to_csv(
                    work / "morphology.csv", index=False)
                morphology["samples"] = work / "morphology.csv"
            table = dataset_statistics(tensors_path, {"samples": work / "samples.h5"}, kind,
                                       {**stats_cfg, "bootstrap": n_boot, "permutations": 0, "seed": seed},
                                       morphology_paths=morphology, reference="validation").comparison
            found = table[table["set"] == "discovered"].set_index("statistic")["value"].to_dict()
            noise = _standard_errors(table) if n_boot > 1 else {}
            misses = _misses(found, floors, recall_floor, noise)
            row.update({"statistics": {k: float(v) for k, v in found.items()}, "objective": _objective(found, units),
                        "standard_errors": noise, "misses": misses, "feasible": not any(misses.values()),
                        "acceptance_rate": float(result.acceptance_rate), "quotas_raised": screening["quotas_raised"]})
            log.info("setting %s: objective %.3g, misses %s", setting, row["objective"], misses)
            rows.append(row)
    feasible = [r for r in rows if r.get("feasible")]
    if feasible:
        best, reason = min(feasible, key=lambda r: r["objective"]), "the lowest objective among the settings " \
                                                                     "that meet every floor"
    else:
        scored = [r for r in rows if "misses" in r]
        if not scored:
            raise ConfigError("discovery.search: no setting of the grid completed discovery; see the log")
        best = min(scored, key=lambda r: (sum(r["misses"].values()), r["objective"]))
        reason = "no setting met every floor: the one that misses them least (sum of misses in units of each floor)"
    chosen = {k: v for k, v in best["resolved"].items() if k not in fixed}
    log.info("chose %s: %s", chosen, reason)
    return {"chosen": chosen, "fixed_by_config": fixed, "reason": reason, "reference": "validation",
            "objective": "mean over domain statistics of (distance to the validation maps / its bootstrap spread "
                         "for the few-shot maps)^2", "units": units,
            "fewshot_row": {k: float(v) for k, v in own.items()},
            "floors": {**floors, "recall_floor": recall_floor,
                       "missed_when": "near-copy share above its floor; novelty W1 above, recall below its floor by "
                                      "more than the setting's standard error (bootstrap of the set and the "
                                      "validation maps)"},
            "n_samples": n_samples, "bootstrap": n_boot, "settings": rows,
            "cost": {"settings": len(rows), "unet_forwards": int(forwards),
                     "seconds": round(time.perf_counter() - start, 1)}}


def _calibrate_in_place(samples_path, tensors_path, seed: int) -> dict:
    """Fit the decoder's spectral tilt on a decoded set against the few-shot maps, as rule discover fits it
    on the same latents' decodes (:func:`discoverydiff.spectral.fit_calibration`), and lay it on the set
    where it is applied; returns the fit."""
    from ..spectral import apply_calibration
    from ..store import TensorFileWriter, read_tensor_file
    from .files import fit_fewshot_calibration

    samples = read_tensor_file(samples_path)
    fit, norm = fit_fewshot_calibration(samples.x, tensors_path, seed)
    if fit.get("applied"):
        x = apply_calibration(samples.x, fit, norm)
        with TensorFileWriter(samples_path, x.shape, "samples", {**samples.attrs, "spectral_calibration": fit}) as out:
            out.write(0, x, samples.names)
    return fit


def _forwards(latents_path, samples_path) -> int:
    """UNet forwards of one setting: its screening decodes and the decoding of its kept latents."""
    from ..store import read_attrs, row_index

    acceptance = read_attrs(latents_path).get("acceptance") or {}
    screening = acceptance.get("screening") or {}
    steps = int(read_attrs(samples_path)["n_steps"])
    screened = 0
    if int(screening.get("oversample", 1)) > 1:
        screened = int(screening["n_candidates"]) * int(screening["preview_steps"])
    n = len(row_index(samples_path).rows)
    calibration = n * steps if acceptance.get("spectral_calibration") else 0  # the kept latents decoded to fit it
    return screened + calibration + n * steps


__all__ = ["FALLBACK", "FLOORS", "calibrate_spectrum", "choose_settings", "config_fixed", "grid_settings",
           "noise_units", "read_choice", "resolve"]
