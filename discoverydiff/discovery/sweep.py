"""The novelty-fidelity trade-off of discovery: one knob varied, every setting decoded and measured.

For each value of a discovery setting (by default ``min_weight``, the smallest slerp weight),
discovery runs on the dataset's inverted targets, the accepted latents are decoded with the
workflow's DDIM settings, and the decoded set is measured as rule ``stats`` measures the
discovered set (:func:`discoverydiff.stats.dataset_statistics`), but against the **validation**
maps: choosing a setting is the validation split's job, and the test maps stay unseen. The table
says, per setting, how novel the samples are (near-copy share, W1 of d1/d2 to the validation maps')
and how close their statistics are to the validation maps;
:func:`discoverydiff.plots.plot_novelty_fidelity` draws it with the few-shot maps, the base-model
and the fine-tuned sets measured the same way as reference points.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Statistics kept from the comparison of each setting (the domain ones are added per kind).
NOVELTY_COLUMNS = ("near_copy_share", "novelty_w1", "mscore", "source_share", "precision", "recall", "clipped_share")


def fidelity_distance(comparison, kind: str):
    """One domain distance per set: PDF W1 of log10 values (fields, dex) or the median of the
    statmorph parameters' W1 (galaxies), as ``{set: value}``."""
    if kind == "field":
        rows = comparison[comparison["statistic"] == "pdf_w1_log10"]
        return dict(zip(rows["set"], rows["value"]))
    rows = comparison[comparison["statistic"].str.endswith("_w1") & (comparison["statistic"] != "novelty_w1")]
    return rows.groupby("set")["value"].median().to_dict()


def novelty_fidelity_sweep(tensors_path, latents_path, id_latents_path, model, settings, options,
                           discovery_cfg: dict, stats_cfg: dict, kind: str, knob: str = "min_weight",
                           values: Sequence[float] = (0.05, 0.15, 0.25, 0.35, 0.45), n_samples: int = 16,
                           seed: int = 0, morphology_paths=None, reference_sets=None):
    """Discover, decode and measure the discovered set at every value of ``knob``.

    Parameters
    ----------
    tensors_path, latents_path, id_latents_path : the dataset's tensors.h5, its inverted
        few-shot targets and the base model's inverted samples.
    model, settings, options : the engine (:func:`discoverydiff.workflow.engine_from_params`).
    discovery_cfg, stats_cfg : the config's ``discovery`` and ``stats`` sections.
    kind : ``field`` or ``galaxy``.
    knob : the ``discovery`` key to vary.
    values : its values.
    n_samples : latents per setting.
    morphology_paths : the real sets' morphology tables (galaxies), as for rule ``stats``.
    reference_sets : set name -> tensor file (e.g. ``base_samples``, ``baseline_samples``), measured
        against the validation maps too, as reference points (their first ``n_samples`` maps).

    Returns
    -------
    pandas.DataFrame
        One row per value (``set`` = ``sweep``): ``knob``, ``value``, ``fidelity``
        (:func:`fidelity_distance`), the :data:`NOVELTY_COLUMNS`, ``acceptance_rate``; a setting
        where discovery stopped short has its ``error``. Then one row per reference set (the
        few-shot maps among them), with ``value`` empty.
    """
    import pandas as pd

    from ..stats import dataset_statistics
    from .files import decode_discovered, discover_from_files
    from .sampling import TooFewAccepted
    from .search import calibrate_spectrum, resolve

    rows = []
    with tempfile.TemporaryDirectory(prefix="novelty_sweep_") as tmp:
        for value in values:
            cfg = resolve({**discovery_cfg, knob: value, "n_samples": n_samples})
            where = Path(tmp) / f"{knob}_{value}"
            row = {"set": "sweep", "knob": knob, "value": float(value)}
            try:
                result = discover_from_files(latents_path, id_latents_path, where / "latents.h5",
                                             where / "geometry.csv", cfg, seed, model=model, options=options,
                                             screening_path=where / "screening.csv", tensors_path=tensors_path,
                                             calibrate_spectrum=calibrate_spectrum(cfg, kind))
            except TooFewAccepted as exc:
                log.warning("%s = %s: %s", knob, value, exc)
                rows.append({**row, "error": str(exc)})
                continue
            decode_discovered(model, where / "latents.h5", where / "samples.h5", settings, options, seed)
            comparison = dataset_statistics(tensors_path, {"samples": where / "samples.h5"}, kind,
                                            {**stats_cfg, "bootstrap": 0, "permutations": 0},
                                            morphology_paths=morphology_paths, reference="validation").comparison
            found = comparison[comparison["set"] == "discovered"].set_index("statistic")["value"]
            row.update({"set": "sweep", "fidelity": fidelity_distance(comparison, kind).get("discovered", np.nan),
                        "acceptance_rate": result.acceptance_rate, "error": ""})
            row.update({name: float(found.get(name, np.nan)) for name in NOVELTY_COLUMNS})
            log.info("%s = %s: %s", knob, value, {k: round(v, 3) for k, v in row.items() if isinstance(v, float)})
            rows.append(row)
    comparison = dataset_statistics(tensors_path, dict(reference_sets or {}), kind,
                                    {**stats_cfg, "bootstrap": 0, "permutations": 0}, morphology_paths=morphology_paths,
                                    n_samples=n_samples, reference="validation").comparison
    fidelity = fidelity_distance(comparison, kind)
    for name in dict.fromkeys(comparison["set"]):
        found = comparison[comparison["set"] == name].set_index("statistic")["value"]
        rows.append({"set": name, "knob": knob, "value": np.nan, "fidelity": fidelity.get(name, np.nan), "error": "",
                     **{column: float(found.get(column, np.nan)) for column in NOVELTY_COLUMNS}})
    columns = ["set", "knob", "value", "fidelity", *NOVELTY_COLUMNS, "acceptance_rate", "error"]
    return pd.DataFrame(rows).reindex(columns=columns)
