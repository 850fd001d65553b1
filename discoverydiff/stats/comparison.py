"""Comparison of sample sets with the real targets: the table of the workflow's stats rule.

:func:`compare_sets` gives the distance of every set's statistics (power spectra and
one-point PDFs of fields, statmorph parameters of galaxies, the memorization score) to
those of the real target maps; :func:`dataset_statistics` runs it on one dataset's tensor
files in physical units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ..errors import InputError
from .morphology import MORPHOLOGY_PARAMETERS, galaxy_morphology
from .neighbours import load_feature_extractor
from .novelty import (
    MSCORE_THRESHOLD,
    NEAR_COPY_THRESHOLD,
    bootstrap_interval,
    mscore,
    near_copy_share,
    novelty_table,
    novelty_w1,
    paired_reproducibility,
    pixel_features,
    source_share,
    table_set_name,
)
from .onepoint import SortedReference, _log10_values, pdf_moments, wasserstein1
from .power import _fundamental, fit_power_law, radial_power_spectrum

FIELD_POWER_OF = ("log10", "overdensity", "field")


def _as_maps(x, channel: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 4:
        x = x[:, channel]
    if x.ndim != 3:
        raise ValueError(f"fields must be (N, H, W) or (N, C, H, W), got shape {x.shape}")
    return x


def _power_input(maps: np.ndarray, power_of: str) -> tuple[np.ndarray, dict]:
    if power_of == "log10":
        return _log10_values(maps).reshape(maps.shape), {"overdensity": False}
    if power_of == "overdensity":
        return maps, {"overdensity": True}
    if power_of == "field":
        return maps, {"overdensity": False}
    raise ValueError(f"power_of must be one of {FIELD_POWER_OF}, got {power_of!r}")


def _per_map_spectra(maps, boxlength, power_of, window):
    data, options = _power_input(maps, power_of)
    k, power, _ = radial_power_spectrum(data, boxlength, window=window, **options)
    return k, power


_COLUMNS = ["set", "statistic", "value", "units", "set_value", "real_value", "n_set", "n_real", "ci_low", "ci_high"]


def _field_statistics(maps, ctx) -> Callable[[np.ndarray], dict]:
    """statistic -> (value, units, set_value, real_value) of the maps ``idx`` of one set."""
    _, power = _per_map_spectra(maps, ctx["boxlength"], ctx["power_of"], ctx["window"])
    logs = _log10_values(maps).reshape(len(maps), -1)
    k, p_real, k_lo, k_hi = ctx["k"], ctx["p_real"], ctx["k_lo"], ctx["k_hi"]

    def statistic(idx):
        p_set = power[idx].mean(axis=0)
        in_range = (k >= k_lo) & (k <= k_hi) & (p_set > 0) & (p_real > 0)
        out = {"power_log10_distance": (np.mean(np.abs(np.log10(p_set[in_range]) - np.log10(p_real[in_range]))),
                                        "dex", np.nan, np.nan)}
        slope = fit_power_law(k, p_set, k_lo, k_hi)[0]
        out["power_slope_difference"] = (slope - ctx["slope_real"], "", slope, ctx["slope_real"])
        values = logs[idx].ravel()
        out["pdf_w1_log10"] = (ctx["real_log_sorted"].w1(values), "dex", np.nan, np.nan)
        moments = pdf_moments(values, log10=False)
        for moment, unit in (("mean", "dex"), ("std", "dex"), ("skewness", ""), ("kurtosis", "")):
            out[f"log10_{moment}_difference"] = (moments[moment] - ctx["moments_real"][moment], unit,
                                                 moments[moment], ctx["moments_real"][moment])
        return out

    return statistic


def _galaxy_statistics(table, real_ok) -> Callable[[np.ndarray], dict]:
    def statistic(idx):
        chosen = table.iloc[idx]
        ok = chosen[~chosen["failed"]]
        out = {}
        for parameter in MORPHOLOGY_PARAMETERS:
            a, b = ok[parameter].to_numpy(), real_ok[parameter].to_numpy()
            out[f"{parameter}_w1"] = (wasserstein1(a, b) if a.size and b.size else np.nan, "",
                                      np.median(a) if a.size else np.nan, np.median(b) if b.size else np.nan)
        share = float(chosen["failed"].mean()) if len(chosen) else np.nan
        out["failed_fit_share"] = (share, "fraction", share, np.nan)
        return out

    return statistic


def _novelty_statistics(ratios, cosine, heldout_ratios, threshold, mscore_threshold, names, target_names,
                        clipped=None, real_clipped_share=np.nan) -> Callable[[np.ndarray], dict]:
    """near_copy_share, mscore, novelty_w1, source_share, clipped_share of the rows ``idx`` of a set."""

    def statistic(idx):
        out = {"near_copy_share": (near_copy_share(ratios[idx], threshold), "fraction", np.nan, np.nan),
               "mscore": (mscore(cosine[idx], mscore_threshold), "fraction", np.nan, np.nan)}
        if heldout_ratios is not None:
            out["novelty_w1"] = (novelty_w1(ratios[idx], heldout_ratios), "", float(np.median(ratios[idx])),
                                 float(np.median(heldout_ratios)))
        share = source_share([names[i] for i in idx], target_names) if names is not None else np.nan
        if np.isfinite(share):
            out["source_share"] = (share, "fraction", share, np.nan)
        if clipped is not None:
            value = float(clipped[idx].mean())
            out["clipped_share"] = (value, "fraction", value, real_clipped_share)
        return out

    return statistic


def _knn_statistics(membership) -> Callable[[np.ndarray], dict]:
    """k-NN precision and recall of the rows ``idx`` of the judged set (balls of the full set)."""
    in_real_ball, real_to_set, radii = membership

    def statistic(idx):
        return {"precision": (float(in_real_ball[idx].mean()), "fraction", np.nan, np.nan),
                "recall": (float((real_to_set[:, idx] < radii[idx][None, :]).any(axis=1).mean()), "fraction",
                           np.nan, np.nan)}

    return statistic


def _knn_membership(real_features, set_features, k):
    """(in_real_ball (M,), real-to-set distances (N, M), set radii (M,)) of k-NN precision / recall,
    with :mod:`discoverydiff.fidelity`'s conventions; None when a set has k or fewer members."""
    from ..fidelity import _pairwise_distances, knn_radii

    if len(real_features) <= k or len(set_features) <= k:
        return None
    d = _pairwise_distances(real_features, set_features)
    in_real_ball = (d < knn_radii(real_features, k)[:, None]).any(axis=0)
    return in_real_ball, d, knn_radii(set_features, k)


def compare_sets(real: Mapping[str, np.ndarray], sets: Mapping[str, np.ndarray], kind: str = "field",
                 memorization_reference: str = "fewshot", target_keys=None, boxlength=1.0,
                 power_of: str = "log10", k_range=None, window=None, channel: int = 0,
                 features: Callable | None = None, memorization_threshold: float = NEAR_COPY_THRESHOLD,
                 morphology_kwargs: dict | None = None, morphology_tables: Mapping | None = None,
                 clip_masks: Mapping[str, np.ndarray] | None = None, heldout_key: str = "heldout",
                 names: Mapping[str, list] | None = None, precision_features: Callable | None = None,
                 center_cosine: bool | None = None, mscore_threshold: float = MSCORE_THRESHOLD,
                 n_boot: int = 200, seed: int = 0, k: int = 3, return_novelty: bool = False):
    """Distance of every set's statistics to those of the real target maps, with bootstrap intervals.

    Parameters
    ----------
    real : dict of str -> ndarray
        Real target-domain data in physical units, e.g. ``{"fewshot": ...}``; fields
        (N, H, W) or (N, C, H, W), galaxies (N, C, H, W) or (N, H, W).
    sets : dict of str -> ndarray
        The sets to judge (discovered samples, in-domain samples, baseline, the held-out
        targets), same layout.
    kind : {"field", "galaxy"}
    memorization_reference : str
        Key of ``real`` holding the few-shot targets: the references of the novelty
        statistics (d1 / d2, cosine).
    target_keys : sequence of str, optional
        Keys of ``real`` pooled into the statistical target; default all of them.
    boxlength : float or (float, float)
        Map side length(s) for the power spectra (only the units of k depend on it).
    power_of : {"log10", "overdensity", "field"}
        Fields only: the spectrum is of log10 f (default: fields span decades, the log
        spectrum is not dominated by a few bright pixels), of f / <f> - 1, or of f.
    k_range : (float, float), optional
        Fields only: slope-fit range in angular wavenumber (``boxlength`` units); default
        2 dk to half the Nyquist wavenumber (skips the largest scale and the pixel scale,
        where resampling smooths), at least to 5 dk.
    window : optional
        Window of the power spectra (see :func:`radial_power_spectrum`).
    channel : int
        Fields only: channel of a 4-D input.
    features : callable, optional
        Features of the novelty statistics; default the flattened log10 values (fields) or
        values (galaxies).
    memorization_threshold : float
        d1 / d2 below which a sample is a near-copy (1/3).
    morphology_kwargs : dict, optional
        Galaxies only: keywords of :func:`galaxy_morphology`.
    morphology_tables : dict of str -> DataFrame, optional
        Galaxies only: :func:`galaxy_morphology` tables already measured (rule ``morphology``),
        keyed like ``real`` and ``sets``; a set without one is measured here.
    clip_masks : dict of str -> ndarray of bool, optional
        Pixels at a clip bound, keyed like ``real`` and ``sets`` (ingest's ``clipped`` mask
        for real maps, :meth:`NormalizationRecord.clip_mask` for generated ones): gives a
        ``clipped_share`` row for every set with a mask, the real maps' included.
    heldout_key : str
        Key of ``sets`` holding the held-out targets, the reference of ``novelty_w1`` and of
        k-NN precision / recall; without it those rows are left out.
    names : dict of str -> list of str, optional
        Row names per set and for ``real[memorization_reference]``: the ``nearest`` column of
        the novelty table, and ``source_share`` (discovered names say their sources).
    precision_features : callable, optional
        Maps physical maps to (N, D) features for k-NN precision and recall against the
        held-out targets (k = ``k``); without it those rows are left out.
    center_cosine : bool, optional
        Centre the cosine's features on the few-shot mean (default: when ``features`` is None
        or the default pixels).
    mscore_threshold : float
    n_boot, seed : int
        Bootstrap draws of each set (its rows resampled with replacement; the real targets
        fixed) for ``ci_low`` / ``ci_high``, the 95% percentile interval; 0 draws: NaN.
    k : int
        Neighbour rank of the k-NN balls (Kynkaanniemi et al. 2019 use 3).
    return_novelty : bool
        Also return the per-sample novelty table (:func:`novelty_table`).

    Returns
    -------
    pandas.DataFrame
        One row per (set, statistic): ``set``, ``statistic``, ``value``, ``units``,
        ``set_value`` and ``real_value`` (the statistic itself where it has one, else NaN),
        ``n_set``, ``n_real``, ``ci_low``, ``ci_high``. Statistics, with the meaning of ``value``:

        fields
            ``power_log10_distance`` mean over k-bins of |log10 P_set - log10 P_real| of the
            set-mean spectra (dex); ``power_slope_difference`` slope_set - slope_real;
            ``pdf_w1_log10`` W1 of pooled log10 values (dex); ``log10_mean_difference``,
            ``log10_std_difference`` (dex), ``log10_skewness_difference``,
            ``log10_kurtosis_difference`` (set minus real).
        galaxies
            ``<parameter>_w1`` W1 of each statmorph parameter over successful fits
            (``set_value``/``real_value``: the medians); ``failed_fit_share`` the share of
            failed fits of the set.
        both (:mod:`.novelty`)
            ``near_copy_share`` (d1 / d2 < threshold), ``mscore`` (highest cosine to a few-shot
            target above 0.6), ``novelty_w1`` (W1 of the set's d1 / d2 to the held-out
            targets'; ``set_value``/``real_value``: the medians), ``precision`` and ``recall``
            against the held-out targets (the ``heldout`` row: the few-shot targets' own,
            what real members of the domain score), ``source_share`` (sets whose names
            carry their sources), ``clipped_share`` (with ``clip_masks``; ``real_value``:
            the pooled real targets').
    pandas.DataFrame
        Only with ``return_novelty``: one row per sample of every set (:func:`novelty_table`).
    """
    import pandas as pd

    if kind not in ("field", "galaxy"):
        raise ValueError(f"kind must be 'field' or 'galaxy', got {kind!r}")
    if memorization_reference not in real:
        raise ValueError(f"real has no {memorization_reference!r} entry for the novelty statistics; "
                         f"its keys are {sorted(real)}")
    keys = list(real) if target_keys is None else list(target_keys)
    target = np.concatenate([np.asarray(real[key], dtype=np.float64) for key in keys])
    n_real = target.shape[0]
    if center_cosine is None:
        center_cosine = features is None
    if features is None:
        features = pixel_features(kind)
    references = real[memorization_reference]
    names = dict(names or {})
    reference_names = list(names.get(memorization_reference) or [f"target_{i}" for i in range(len(references))])
    novelty = novelty_table(sets, references, reference_names, names, features, center_cosine)
    masks = dict(clip_masks or {})
    real_masks = [np.asarray(masks[key], dtype=bool) for key in keys if key in masks]
    real_share = float(np.mean(np.concatenate([m.ravel() for m in real_masks]))) if real_masks else np.nan

    if kind == "field":
        real_maps = _as_maps(target, channel)
        k_bins, power_real = _per_map_spectra(real_maps, boxlength, power_of, window)
        dk, k_nyquist = _fundamental(real_maps.shape[1:], boxlength)
        # default: skip the largest scale and the resampling-smoothed pixel scale, but keep at
        # least four bins on small maps (16x16: Nyquist is only 8 dk)
        k_lo, k_hi = k_range if k_range is not None else (2.0 * dk, max(0.5 * k_nyquist, 5.0 * dk))
        p_real = power_real.mean(axis=0)
        real_log = _log10_values(real_maps)
        ctx = {"boxlength": boxlength, "power_of": power_of, "window": window, "k": k_bins, "p_real": p_real,
               "k_lo": k_lo, "k_hi": k_hi, "slope_real": fit_power_law(k_bins, p_real, k_lo, k_hi)[0],
               "real_log_sorted": SortedReference(real_log), "moments_real": pdf_moments(real_log, log10=False)}
        domain = {name: _field_statistics(_as_maps(data, channel), ctx) for name, data in sets.items()}
    else:
        kwargs = dict(morphology_kwargs or {})
        tables = dict(morphology_tables or {})

        def measured(name, data):
            return tables[name] if name in tables else galaxy_morphology(np.asarray(data, dtype=np.float64), **kwargs)

        real_table = pd.concat([measured(key, real[key]) for key in keys], ignore_index=True)
        real_ok = real_table[~real_table["failed"]]
        domain = {name: _galaxy_statistics(measured(name, data).reset_index(drop=True), real_ok)
                  for name, data in sets.items()}

    heldout_ratios = None
    if heldout_key in sets:
        heldout_ratios = novelty.loc[novelty["set"] == heldout_key, "ratio"].to_numpy()
    knn = {}
    if precision_features is not None and heldout_key in sets:
        held = np.asarray(precision_features(sets[heldout_key]), dtype=np.float64)
        for name, data in sets.items():
            judged = references if name == heldout_key else data
            knn[name] = _knn_membership(held, np.asarray(precision_features(judged), dtype=np.float64), k)

    rows = []
    for b, name in enumerate(sets):
        part = novelty[novelty["set"] == name]
        clipped = (np.asarray(masks[name], dtype=bool).reshape(len(sets[name]), -1).mean(axis=1)
                   if name in masks else None)
        parts = [(domain[name], len(sets[name])),
                 (_novelty_statistics(part["ratio"].to_numpy(), part["max_cosine"].to_numpy(), heldout_ratios,
                                      memorization_threshold, mscore_threshold, names.get(name), reference_names,
                                      clipped, real_share), len(sets[name]))]
        if knn.get(name) is not None:  # the held-out row judges the few-shot targets: their rows are resampled
            parts.append((_knn_statistics(knn[name]), len(references) if name == heldout_key else len(sets[name])))
        for fn, n in parts:
            intervals = bootstrap_interval(lambda idx, fn=fn: {key: v[0] for key, v in fn(idx).items()}, n, n_boot,
                                           seed + b)
            for statistic_name, (value, units, set_value, real_value) in fn(np.arange(n)).items():
                lo, hi = intervals.get(statistic_name, (np.nan, np.nan))
                rows.append({"set": name, "statistic": statistic_name, "value": float(value), "units": units,
                             "set_value": float(set_value), "real_value": float(real_value), "n_set": int(n),
                             "n_real": int(len(references) if statistic_name in _NOVELTY_STATISTICS else n_real),
                             "ci_low": lo, "ci_high": hi})
    for name in real:  # the real targets' own clipped share
        if name in masks and name not in sets:
            share = np.asarray(masks[name], dtype=bool).reshape(len(real[name]), -1).mean(axis=1)
            lo, hi = bootstrap_interval(lambda idx, s=share: {"v": float(s[idx].mean())}, len(share), n_boot,
                                        seed).get("v", (np.nan, np.nan))
            rows.append({"set": name, "statistic": "clipped_share", "value": float(share.mean()), "units": "fraction",
                         "set_value": float(share.mean()), "real_value": real_share, "n_set": len(share),
                         "n_real": n_real, "ci_low": lo, "ci_high": hi})
    table = pd.DataFrame(rows, columns=_COLUMNS)
    return (table, novelty) if return_novelty else table


_NOVELTY_STATISTICS = ("near_copy_share", "mscore", "novelty_w1", "source_share")  # n_real: the few-shot


def dataset_statistics(tensors_path, set_paths: Mapping[str, object], kind: str = "field", cfg: dict | None = None,
                       morphology_paths: Mapping[str, object] | None = None, empirical_path=None):
    """Statistics of every sample set of one dataset against its few-shot targets.

    Every set (discovered samples, base-model samples, the fine-tuned baseline) is mapped
    to physical units through the dataset's normalization record; the held-out targets
    are added as the ``heldout`` set, the floor that sampling noise alone gives. The real
    maps (few-shot and held-out) are the unclipped ones ingest kept, so their PDFs, spectra
    and W1 include the tails beyond the record's lo/hi that no generated sample can reach;
    every set, real ones included, gets its ``clipped_share``.

    The discovered samples (``samples``) are called ``discovered`` in the tables.

    Parameters
    ----------
    tensors_path : the dataset's ``tensors.h5`` (few-shot and held-out targets, the record).
    set_paths : set name -> tensor file of samples.
    kind : ``field`` (power spectra, PDFs) or ``galaxy`` (morphology).
    cfg : the config's ``stats`` section: ``power_of``, ``window``, ``memorization_threshold``,
        ``feature_extractor`` (a TorchScript file, or null for pixels), ``boxlength``, ``morphology``,
        ``bootstrap`` (draws for the intervals), ``seed``.
    morphology_paths : set name -> ``morphology/{set}.csv`` of rule ``morphology`` (galaxies; the
        few-shot and held-out targets included); sets without one are measured with ``cfg["morphology"]``.

    Returns
    -------
    comparison : DataFrame of :func:`compare_sets` (one row per set and statistic).
    spectra : DataFrame, fields only (else empty): ``set``, ``k``, ``power_mean``,
        ``power_std``, ``n_maps`` per k-bin, for the figures.
    The ``baseline_samples`` set also gets ``rpscore_vs_base``: the share of its samples whose
    feature cosine similarity to the base-model sample drawn from the same initial noise exceeds
    0.6 (:func:`~discoverydiff.stats.novelty.paired_reproducibility`; ``set_value``: the mean
    similarity), how much vanilla fine-tuning left the output unchanged. With ``empirical_path``
    (rule ``sample_empirical``: the few-shot set's optimal denoiser from the same noise) the
    ``base_samples`` and ``baseline_samples`` sets get ``rpscore_vs_empirical`` the same way:
    how far each model is from the memorization limit.
    novelty : DataFrame of :func:`~discoverydiff.stats.novelty.novelty_table`: ``set, name, d1,
        d2, nearest`` (and ``ratio``, ``max_cosine``) for every sample of every set.
    """
    import pandas as pd

    from ..fidelity import image_summary_features, standardize_features
    from ..physical import real_physical_maps
    from ..store import SPLIT_FEWSHOT, SPLIT_HELDOUT, read_tensor_file

    cfg = dict(cfg or {})
    fewshot, fewshot_mask, fewshot_names, record = real_physical_maps(tensors_path, SPLIT_FEWSHOT)
    heldout, heldout_mask, heldout_names, _ = real_physical_maps(tensors_path, SPLIT_HELDOUT)
    real = {SPLIT_FEWSHOT: fewshot}
    sets, masks = {}, {SPLIT_FEWSHOT: fewshot_mask}
    names = {SPLIT_FEWSHOT: fewshot_names, SPLIT_HELDOUT: heldout_names}
    for name, path in set_paths.items():
        samples = read_tensor_file(path)
        if samples.x.shape[1] != record.model_channels:
            raise InputError(path, f"has {samples.x.shape[1]} channel(s); {tensors_path}'s record maps "
                                   f"{record.model_channels}")
        label = table_set_name(name)
        sets[label], masks[label] = record.to_physical(samples.x), record.clip_mask(samples.x)
        names[label] = samples.names
    sets[SPLIT_HELDOUT], masks[SPLIT_HELDOUT] = heldout, heldout_mask
    features = None
    if cfg.get("feature_extractor"):
        extractor = load_feature_extractor(cfg["feature_extractor"])
        features = lambda x: extractor(record.to_normalized(x)[0])  # noqa: E731  (extractors see [-1, 1])
    # k-NN precision / recall: the 35 documented summary features of the maps as the model sees
    # them (fidelity.image_summary_features), standardized on the held-out targets
    held_summary = image_summary_features(record.to_normalized(heldout)[0])

    def precision_features(x):
        return standardize_features(held_summary, image_summary_features(record.to_normalized(x)[0]))[1]

    power_of = cfg.get("power_of", "log10")
    window = cfg.get("window")
    boxlength = float(cfg.get("boxlength", 1.0))
    comparison, novelty = compare_sets(
        real, sets, kind, boxlength=boxlength, power_of=power_of, window=window, features=features,
        memorization_threshold=float(cfg.get("memorization_threshold", NEAR_COPY_THRESHOLD)),
        morphology_kwargs={k: v for k, v in (cfg.get("morphology") or {}).items() if v is not None},
        morphology_tables={table_set_name(name): read_morphology_table(path)
                           for name, path in (morphology_paths or {}).items()},
        clip_masks=masks, names=names, precision_features=precision_features,
        n_boot=int(cfg.get("bootstrap", 200)), seed=int(cfg.get("seed", 0)), return_novelty=True)
    # same initial noise: does fine-tuning change the output, and how close is each model to the
    # few-shot set's own optimal denoiser (which can only return the targets)?
    paired = {name: (sets[name], names[name]) for name in sets}
    pairs = [("base_samples", "baseline_samples", "rpscore_vs_base")]
    if empirical_path is not None:
        empirical = read_tensor_file(empirical_path)
        paired["empirical"] = (record.to_physical(empirical.x), empirical.names)
        pairs += [("empirical", name, "rpscore_vs_empirical") for name in ("base_samples", "baseline_samples")]
    rp_rows = []
    for reference, name, statistic in pairs:
        if reference not in paired or name not in paired:
            continue
        rp = paired_reproducibility(*paired[reference], *paired[name], features or pixel_features(kind),
                                    center=features is None, n_boot=int(cfg.get("bootstrap", 200)),
                                    seed=int(cfg.get("seed", 0)))
        if rp is not None:
            rp_rows.append({"set": name, "statistic": statistic, "value": rp["value"], "units": "fraction",
                            "set_value": rp["mean_similarity"], "real_value": np.nan, "n_set": rp["n"],
                            "n_real": rp["n"], "ci_low": rp["ci_low"], "ci_high": rp["ci_high"]})
    if rp_rows:
        comparison = pd.concat([comparison, pd.DataFrame(rp_rows)], ignore_index=True)
    rows = []
    if kind == "field":
        for name, data in {**real, **sets}.items():
            k, power = _per_map_spectra(_as_maps(data, 0), boxlength, power_of, window)
            for j in range(len(k)):
                rows.append({"set": name, "k": float(k[j]), "power_mean": float(np.nanmean(power[:, j])),
                             "power_std": float(np.nanstd(power[:, j])), "n_maps": len(power)})
    return comparison, pd.DataFrame(rows, columns=["set", "k", "power_mean", "power_std", "n_maps"]), novelty


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
