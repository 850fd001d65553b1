"""Does a claim hold over seeds? Discovery, the baselines and the controls run again under several seeds.

One run of the workflow is one draw: which candidates discovery accepts, which noise the fine-tuned
and base models start from. Here every method is run again under each seed of
``evaluation.seeds`` (the splits, the inverted few-shot targets and the in-domain latents stay
fixed: they are data, not the method's draw), every set is measured against the test maps as rule
``stats`` measures it (no intervals, the seeds are the replication), and for each statistic the
difference of each set's distance to the test maps from the discovered set's is summarized: its
mean and spread over seeds and the share of seeds in which the discovered set is closer.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = ["set", "statistic", "n_seeds", "discovered_mean", "set_mean", "delta_mean", "delta_std",
                   "delta_min", "delta_max", "share_discovered_closer", "share_set_closer"]


def run_seed(seed: int, work, tensors_path, latents_path, id_latents_path, model, settings, options,
             discovery_cfg: dict, baseline_cfg: dict | None, controls, n_samples: int, kind: str = "field") -> dict:
    """Every generated set of one seed, written under ``work``: set name -> tensor file of samples.
    ``discovery_cfg`` is the resolved section (:func:`discoverydiff.discovery.search.resolve`)."""
    from ..baseline import finetune_and_sample
    from ..discovery import decode_discovered, discover_from_files, screen_oversample
    from ..discovery.search import calibrate_spectrum
    from ..engine import sample_from_noise
    from .controls import baseline_sets, prior_config, unscreened_latents

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = {**discovery_cfg, "n_samples": n_samples}

    def discover(config, stem):
        discover_from_files(latents_path, id_latents_path, work / f"{stem}_latents.h5", work / f"{stem}_geometry.csv",
                            config, seed, model=model, options=options, screening_path=work / f"{stem}_screening.csv",
                            tensors_path=tensors_path, calibrate_spectrum=calibrate_spectrum(config, kind))

    discover(cfg, "discovered")
    sets = {"samples": decode_discovered(model, work / "discovered_latents.h5", work / "samples.h5", settings,
                                         options, seed)}
    if "discovered_unscreened" in controls:
        unscreened_latents(work / "discovered_latents.h5", work / "unscreened_latents.h5", n_samples, seed)
        sets["discovered_unscreened"] = decode_discovered(model, work / "unscreened_latents.h5",
                                                          work / "discovered_unscreened.h5", settings, options, seed)
    if "discovered_prior" in controls:
        discover(prior_config(cfg), "prior")
        sets["discovered_prior"] = decode_discovered(model, work / "prior_latents.h5", work / "discovered_prior.h5",
                                                     settings, options, seed)
    if baseline_cfg is not None:
        draws = n_samples * (screen_oversample(cfg) if "baseline_selected" in controls else 1)
        finetune_and_sample(model, tensors_path, work / "baseline_candidates.h5", settings, options, baseline_cfg,
                            draws, seed)
        baseline_sets(work / "baseline_candidates.h5", tensors_path, work / "baseline_samples.h5",
                      work / "baseline_selected.h5", work / "baseline_screening.csv", n_samples,
                      cfg.get("screen") or {}, seed)
        sets["baseline_samples"] = work / "baseline_samples.h5"
        if "baseline_selected" in controls:
            sets["baseline_selected"] = work / "baseline_selected.h5"
    sets["base_samples"] = sample_from_noise(model, work / "base_samples.h5", n_samples, settings, options, seed)
    return sets


def seed_table(tensors_path, latents_path, id_latents_path, model, settings, options, discovery_cfg: dict,
               baseline_cfg: dict | None, stats_cfg: dict, kind: str, seeds, controls=(), n_samples: int = 16,
               morphology_paths=None, workdir=None):
    """Every statistic of every set against the test maps, per seed: a long table with ``seed``, ``set``,
    ``statistic``, ``value`` and ``delta_vs_discovered`` (the set's distance to the test maps minus the
    discovered set's: positive when the discovered set is closer; :func:`~..stats.resampling.badness`).

    ``morphology_paths``: the real sets' morphology tables (galaxies), measured once; the generated
    sets of each seed are measured here with ``stats_cfg["morphology"]``.
    """
    import pandas as pd

    from ..stats import dataset_statistics, morphology_of_set
    from ..stats.resampling import badness, direction

    frames = []
    with tempfile.TemporaryDirectory(prefix="seeds_", dir=workdir) as tmp:
        for seed in seeds:
            work = Path(tmp) / f"seed_{seed}"
            sets = run_seed(int(seed), work, tensors_path, latents_path, id_latents_path, model, settings, options,
                            discovery_cfg, baseline_cfg, controls, n_samples, kind)
            morphology = dict(morphology_paths or {})
            if kind == "galaxy":
                for name, path in sets.items():
                    table = morphology_of_set(tensors_path, name, path, stats_cfg.get("morphology"))
                    table.iloc[:n_samples].to_csv(work / f"morphology_{name}.csv", index=False)
                    morphology[name] = work / f"morphology_{name}.csv"
            comparison = dataset_statistics(tensors_path, sets, kind, {**stats_cfg, "bootstrap": 0, "permutations": 0},
                                            morphology_paths=morphology, n_samples=n_samples).comparison
            comparison = comparison[comparison["reference"] == "test"]
            discovered = comparison[comparison["set"] == "discovered"].set_index("statistic")["value"]
            comparison = comparison[["set", "statistic", "value"]].copy()
            comparison["delta_vs_discovered"] = [
                float(badness(stat, value) - badness(stat, discovered.get(stat, np.nan)))
                if direction(stat) is not None and name != "discovered" else np.nan
                for name, stat, value in comparison[["set", "statistic", "value"]].itertuples(index=False)]
            comparison.insert(0, "seed", int(seed))
            frames.append(comparison)
            log.info("seed %d: %d sets measured", seed, comparison["set"].nunique())
    return pd.concat(frames, ignore_index=True)


def summarize_seeds(table):
    """Per (set, statistic) with a direction: ``n_seeds``, the mean value of the discovered set and of the set,
    the mean, spread (std, ddof 1), min and max of ``delta_vs_discovered`` over seeds, and the shares of seeds in
    which the discovered set is closer (delta > 0) and in which the set is closer (delta < 0)."""
    import pandas as pd

    from ..stats.resampling import direction

    discovered = table[table["set"] == "discovered"].set_index(["seed", "statistic"])["value"]
    rows = []
    for (name, statistic), part in table[table["set"] != "discovered"].groupby(["set", "statistic"], sort=False):
        if direction(statistic) is None:
            continue
        delta = part["delta_vs_discovered"].to_numpy(dtype=np.float64)
        ok = np.isfinite(delta)
        if not ok.any():
            continue
        own = [discovered.get((seed, statistic), np.nan) for seed in part["seed"]]
        rows.append({"set": name, "statistic": statistic, "n_seeds": int(ok.sum()),
                     "discovered_mean": float(np.nanmean(own)), "set_mean": float(part["value"].mean()),
                     "delta_mean": float(delta[ok].mean()),
                     "delta_std": float(delta[ok].std(ddof=1)) if ok.sum() > 1 else np.nan,
                     "delta_min": float(delta[ok].min()), "delta_max": float(delta[ok].max()),
                     "share_discovered_closer": float((delta[ok] > 0).mean()),
                     "share_set_closer": float((delta[ok] < 0).mean())})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


__all__ = ["SUMMARY_COLUMNS", "run_seed", "seed_table", "summarize_seeds"]
