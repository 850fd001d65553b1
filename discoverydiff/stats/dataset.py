"""The statistics of one dataset's sample sets against its test maps: what rule ``stats`` writes.

:func:`dataset_statistics` reads the dataset's ``tensors.h5`` (its few-shot, validation and test
maps, in physical units, unclipped) and every sample set (mapped to physical units through the
dataset's normalization record), and returns:

- ``comparison``: :func:`~.comparison.compare_sets` against the **test** maps, which no method and no
  setting ever saw, with two-sided intervals, differences to the discovered set and permutation
  p-values; the few-shot maps (what handing them back scores: the ceiling for any method that learns
  only from them) and the validation maps (another unseen draw of the domain) are rows beside the
  generated sets; reproducibility rows between models decoded from the same noise are appended;
- ``two_sample``: an energy-distance permutation test of each set against the test maps in the
  summary-feature space (:mod:`.two_sample`);
- ``selection``: the domain statistics of the generated sets against the **few-shot** maps, the
  reference screening selects against: selection diagnostics, never evidence of closeness;
- ``spectra`` (fields) and ``novelty`` (one row per sample).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .comparison import PDF_BINS, compare_sets
from .morphology import MORPHOLOGY_PARAMETERS
from .neighbours import load_feature_extractor
from .novelty import NEAR_COPY_THRESHOLD, paired_reproducibility, pixel_features, table_set_name
from .resampling import NOT_DOMAIN

log = logging.getLogger(__name__)

#: The real sets judged beside the generated ones (rows of tensors.h5), in table order.
REAL_ROWS = ("fewshot", "validation")


@dataclass
class DatasetStatistics:
    """The tables of rule ``stats`` (see the module docstring)."""

    comparison: object
    spectra: object
    novelty: object
    two_sample: object
    selection: object


def dataset_statistics(tensors_path, set_paths: Mapping[str, object], kind: str = "field", cfg: dict | None = None,
                       morphology_paths: Mapping[str, object] | None = None, empirical_path=None,
                       n_samples: int | None = None, reference: str = "test") -> DatasetStatistics:
    """Statistics of every sample set of one dataset against its test maps.

    Parameters
    ----------
    tensors_path : the dataset's ``tensors.h5`` (few-shot, validation and test maps; the record).
    set_paths : set name -> tensor file of samples (``samples`` is called ``discovered`` in the tables).
    kind : ``field`` (power spectra, PDFs) or ``galaxy`` (morphology).
    cfg : the config's ``stats`` section: ``power_of``, ``window``, ``memorization_threshold``,
        ``feature_extractor`` (a TorchScript file, or null for pixels), ``boxlength``, ``morphology``,
        ``bootstrap`` (draws of the intervals), ``permutations`` (of the p-values and the two-sample
        tests), ``seed``, ``pdf_bins``, ``block_mb`` (maps read at a time: no set is held whole).
    morphology_paths : set name -> ``morphology/{set}.csv`` of rule ``morphology`` (galaxies; the real
        sets included); sets without one are measured with ``cfg["morphology"]``.
    empirical_path : rule ``sample_empirical``'s samples (the few-shot set's optimal denoiser from the
        base model's noise): ``rpscore_vs_empirical`` rows.
    n_samples : every generated set is judged on its first ``n_samples`` maps (the same size for all;
        the base model's file holds more, for the in-domain latents).
    reference : the split every statistic is measured against: ``test`` (rule ``stats``), or
        ``validation`` (choosing settings: then the test maps are never read, and the validation maps
        are not a row; the k-NN features are scaled on the validation and few-shot maps together).
    """
    import pandas as pd

    from ..fidelity import image_summary_features
    from ..physical import record_from_attrs
    from ..store import SPLIT_FEWSHOT, SPLIT_TEST, SPLIT_VALIDATION, read_attrs, split_counts
    from .sources import RealMaps, SampleMaps

    cfg = dict(cfg or {})
    attrs = read_attrs(tensors_path)
    record = record_from_attrs(attrs, tensors_path)
    counts = split_counts(tensors_path)
    if reference not in (SPLIT_TEST, SPLIT_VALIDATION):
        raise ValueError(f"reference must be {SPLIT_TEST!r} or {SPLIT_VALIDATION!r}, got {reference!r}")
    if not counts.get(reference):
        raise InputError(tensors_path, f"has no '{reference}' maps (splits: {counts}); the statistics measure every "
                                       f"set against them: run ingest again (datasets.NAME.n_{reference})")
    readable = (SPLIT_FEWSHOT, SPLIT_VALIDATION, SPLIT_TEST) if reference == SPLIT_TEST else (SPLIT_FEWSHOT,
                                                                                             SPLIT_VALIDATION)
    real = {split: RealMaps(tensors_path, split, record) for split in readable if counts.get(split)}
    generated = {table_set_name(name): SampleMaps(path, record, tensors_path, limit=n_samples)
                 for name, path in set_paths.items()}
    for source in generated.values():
        if n_samples is not None and len(source) < n_samples:
            raise InputError(source.path, f"holds {len(source)} samples; every set is judged on {n_samples}")
    sets = {**generated, **{name: real[name] for name in REAL_ROWS if name in real and name != reference}}
    features = None
    if cfg.get("feature_extractor"):
        extractor = load_feature_extractor(cfg["feature_extractor"])
        features = lambda x: extractor(record.to_normalized(x)[0])  # noqa: E731  (extractors see [-1, 1])

    def summary_features(x):
        # k-NN precision / recall and the two-sample test: the 35 documented summary features of the maps
        # as the model sees them (fidelity.image_summary_features), standardized on the reference maps
        return image_summary_features(record.to_normalized(x)[0])

    common = dict(boxlength=float(cfg.get("boxlength", 1.0)), power_of=cfg.get("power_of", "log10"),
                  window=cfg.get("window"), pdf_bins=int(cfg.get("pdf_bins", PDF_BINS)),
                  block_bytes=int(float(cfg.get("block_mb", 64)) * 2**20),
                  morphology_kwargs={k: v for k, v in (cfg.get("morphology") or {}).items() if v is not None},
                  morphology_tables={table_set_name(name): read_morphology_table(path)
                                     for name, path in (morphology_paths or {}).items()})
    seed, n_boot = int(cfg.get("seed", 0)), int(cfg.get("bootstrap", 200))
    comparison, novelty, spectra, two_sample = compare_sets(
        real[reference], sets, kind, fewshot=real[SPLIT_FEWSHOT], features=features,
        memorization_threshold=float(cfg.get("memorization_threshold", NEAR_COPY_THRESHOLD)),
        precision_features=summary_features, standardize_precision=True, n_boot=n_boot,
        n_permutations=int(cfg.get("permutations", 1000)), seed=seed, reference_name=reference,
        return_novelty=True, return_spectra=True, return_two_sample=True,
        # against the few validation maps, their features' scale is fitted with the few-shot maps pooled in
        # (compare_sets: a scale from 12-16 maps alone let recall call every setting's set complete)
        scale_with=SPLIT_FEWSHOT if reference == SPLIT_VALIDATION else None, **common)
    # the reference screening chose the discovered set against: diagnostics of the selection only
    selection = compare_sets(real[SPLIT_FEWSHOT], generated, kind, n_boot=0, seed=seed, compare_with=None,
                             reference_name=SPLIT_FEWSHOT, **common)
    selection = selection[selection["statistic"].map(_is_domain_statistic)].reset_index(drop=True)
    # same initial noise: does fine-tuning change the output, and how close is each model to the
    # few-shot set's own optimal denoiser (which can only return the targets)?
    paired = dict(generated)
    pairs = [("base_samples", "baseline_samples", "rpscore_vs_base")]
    if empirical_path is not None:
        paired["empirical"] = SampleMaps(empirical_path, record, tensors_path, limit=n_samples)
        pairs += [("empirical", name, "rpscore_vs_empirical") for name in ("base_samples", "baseline_samples")]
    rp_rows = []
    for reference, name, statistic in pairs:
        if reference not in paired or name not in paired:
            continue
        rp = paired_reproducibility(paired[reference], paired[reference].names, paired[name], paired[name].names,
                                    features or pixel_features(kind), center=features is None, n_boot=n_boot,
                                    seed=seed)
        if rp is not None:
            rp_rows.append({"set": name, "statistic": statistic, "value": rp["value"], "units": "fraction",
                            "set_value": rp["mean_similarity"], "real_value": np.nan, "n_set": rp["n"],
                            "n_real": rp["n"], "ci_low": rp["ci_low"], "ci_high": rp["ci_high"],
                            "reference": reference})
    if rp_rows:
        comparison = pd.concat([comparison, pd.DataFrame(rp_rows)], ignore_index=True)
    return DatasetStatistics(comparison, spectra, novelty, two_sample, selection)


def _is_domain_statistic(statistic: str) -> bool:
    return statistic not in NOT_DOMAIN


def read_morphology_table(path):
    """A ``morphology/{set}.csv`` of rule ``morphology``, with ``error`` as strings ("" when measured)."""
    import pandas as pd

    table = pd.read_csv(path, dtype={"error": object})
    missing = {"failed", "error", *MORPHOLOGY_PARAMETERS} - set(table.columns)
    if missing:
        raise InputError(path, f"is not a morphology table: no column(s) {sorted(missing)}")
    table["error"] = table["error"].fillna("").astype(str)
    table["failed"] = table["failed"].astype(bool)
    return table


__all__ = ["REAL_ROWS", "DatasetStatistics", "dataset_statistics", "read_morphology_table"]
