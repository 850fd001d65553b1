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
    novelty_frames,
    novelty_w1,
    paired_reproducibility,
    pixel_features,
    source_share,
    table_set_name,
)
from .onepoint import ValueGrid, wasserstein1
from .power import fit_power_law, slope_fit_range
from .sources import BLOCK_BYTES, ArrayMaps, as_source
from .summaries import FieldSettings, NoveltyReferences, draw_weights, log_range, summarize

#: Bins of the shared log10 grid of the one-point statistics: W1 is exact to one bin width.
PDF_BINS = 4096


_COLUMNS = ["set", "statistic", "value", "units", "set_value", "real_value", "n_set", "n_real", "ci_low", "ci_high"]


def _field_statistics(summary, ctx) -> Callable[[np.ndarray], dict]:
    """statistic -> (value, units, set_value, real_value) of the maps ``idx`` of one set, from the
    set's per-map spectra, histograms and power sums (a draw pools them with its weights)."""
    power, counts, tails, sums = summary["power"], summary["counts"], summary["tails"], summary["sums"]
    k, p_real, k_lo, k_hi, grid = ctx["k"], ctx["p_real"], ctx["k_lo"], ctx["k_hi"], ctx["grid"]

    def statistic(idx):
        w = draw_weights(idx, summary.n)
        p_set = (w @ power) / w.sum()
        in_range = (k >= k_lo) & (k <= k_hi) & (p_set > 0) & (p_real > 0)
        out = {"power_log10_distance": (np.mean(np.abs(np.log10(p_set[in_range]) - np.log10(p_real[in_range]))),
                                        "dex", np.nan, np.nan)}
        slope = fit_power_law(k, p_set, k_lo, k_hi)[0]
        out["power_slope_difference"] = (slope - ctx["slope_real"], "", slope, ctx["slope_real"])
        out["pdf_w1_log10"] = (grid.w1(w @ counts, w @ tails, ctx["counts_real"]), "dex", np.nan, np.nan)
        moments = grid.moments(w @ sums)
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
    in_real_ball, real_in_set_ball = membership

    def statistic(idx):
        return {"precision": (float(in_real_ball[idx].mean()), "fraction", np.nan, np.nan),
                "recall": (float(real_in_set_ball[:, idx].any(axis=1).mean()), "fraction", np.nan, np.nan)}

    return statistic


def _knn_membership(real_features, set_features, k, block: int = 1024):
    """(in_real_ball (M,): set point j inside some real point's k-NN ball; real_in_set_ball (N, M):
    real point i inside set point j's ball), with :mod:`discoverydiff.fidelity`'s conventions, in
    blocks of real rows (memory: the (N, M) booleans); None when a set has k or fewer members."""
    from ..fidelity import _pairwise_distances, knn_radii

    if len(real_features) <= k or len(set_features) <= k:
        return None
    real_radii, set_radii = knn_radii(real_features, k), knn_radii(set_features, k)
    in_real_ball = np.zeros(len(set_features), dtype=bool)
    real_in_set_ball = np.empty((len(real_features), len(set_features)), dtype=bool)
    for start in range(0, len(real_features), block):
        d = _pairwise_distances(real_features[start:start + block], set_features)
        in_real_ball |= (d < real_radii[start:start + block, None]).any(axis=0)
        real_in_set_ball[start:start + block] = d < set_radii[None, :]
    return in_real_ball, real_in_set_ball


def compare_sets(real: Mapping[str, np.ndarray], sets: Mapping[str, np.ndarray], kind: str = "field",
                 memorization_reference: str = "fewshot", target_keys=None, boxlength=1.0,
                 power_of: str = "log10", k_range=None, window=None, channel: int = 0,
                 features: Callable | None = None, memorization_threshold: float = NEAR_COPY_THRESHOLD,
                 morphology_kwargs: dict | None = None, morphology_tables: Mapping | None = None,
                 clip_masks: Mapping[str, np.ndarray] | None = None, heldout_key: str = "heldout",
                 names: Mapping[str, list] | None = None, precision_features: Callable | None = None,
                 center_cosine: bool | None = None, mscore_threshold: float = MSCORE_THRESHOLD,
                 n_boot: int = 200, seed: int = 0, k: int = 3, return_novelty: bool = False,
                 return_spectra: bool = False, standardize_precision: bool = False, pdf_bins: int = PDF_BINS,
                 block_bytes: int = BLOCK_BYTES):
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
    return_spectra : bool
        Also return the spectra table (fields): ``set, k, power_mean, power_std, n_maps`` per
        k-bin of the real and judged sets (empty for galaxies).
    standardize_precision : bool
        Scale each of ``precision_features`` to the held-out targets' mean and spread first.
    pdf_bins : int
        Bins of the log10 grid (fields) over the pooled real targets' range: ``pdf_w1_log10`` is
        exact to one bin width (:class:`~.onepoint.ValueGrid`), the moments exact.
    block_bytes : int
        Maps read at a time (float64 bytes). Any set may be a source of :mod:`.sources`
        (e.g. a tensor file) instead of an array: it is read block by block into per-map
        summaries (:mod:`.summaries`), so memory does not grow with the number of maps.

    Returns
    -------
    pandas.DataFrame
        One row per (set, statistic): ``set``, ``statistic``, ``value``, ``units``,
        ``set_value`` and ``real_value`` (the statistic itself where it has one, else NaN),
        ``n_set``, ``n_real``, ``ci_low``, ``ci_high``. Statistics, with the meaning of ``value``:

        fields
            ``power_log10_distance`` mean over k-bins of |log10 P_set - log10 P_real| of the
            set-mean spectra (dex); ``power_slope_difference`` slope_set - slope_real;
            ``pdf_w1_log10`` W1 of pooled log10 values (dex, to one bin of ``pdf_bins``); ``log10_mean_difference``,
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
    pandas.DataFrame
        Only with ``return_spectra``: the spectra table.
    """
    import pandas as pd

    from .neighbours import _features

    if kind not in ("field", "galaxy"):
        raise ValueError(f"kind must be 'field' or 'galaxy', got {kind!r}")
    if memorization_reference not in real:
        raise ValueError(f"real has no {memorization_reference!r} entry for the novelty statistics; "
                         f"its keys are {sorted(real)}")
    names, masks = dict(names or {}), dict(clip_masks or {})
    real_src = {key: as_source(data, masks.get(key), names.get(key)) for key, data in real.items()}
    set_src = {key: as_source(data, masks.get(key), names.get(key)) for key, data in sets.items()}
    keys = list(real) if target_keys is None else list(target_keys)
    n_real = sum(len(real_src[key]) for key in keys)
    if center_cosine is None:
        center_cosine = features is None
    if features is None:
        features = pixel_features(kind)
    # the few-shot targets are held whole (their features are every sample's references): read once
    reference_src = real_src[memorization_reference]
    references, reference_mask = reference_src.rows(np.arange(len(reference_src)))
    reference_names = list(reference_src.names or [f"target_{i}" for i in range(len(references))])
    reference_src = real_src[memorization_reference] = ArrayMaps(references, reference_mask, reference_src.names)
    refs = NoveltyReferences(_features(references, features), features, center_cosine)

    fields, ctx = None, {}
    if kind == "field":
        fields = FieldSettings(boxlength, power_of, window, channel)
        ranges = [log_range(real_src[key], fields, f"real maps {key!r}", block_bytes) for key in keys]
        fields.grid = ValueGrid(min(r[0] for r in ranges), max(r[1] for r in ranges), pdf_bins,
                                float(np.mean([r[2] for r in ranges])))
    real_summaries = {key: summarize(src, fields, what=f"real maps {key!r}", block_bytes=block_bytes)
                      for key, src in real_src.items()}
    real_clipped = [real_summaries[key]["clipped"] for key in keys if real_summaries[key].get("clipped") is not None]
    real_share = float(np.mean(np.concatenate(real_clipped))) if real_clipped else np.nan
    if kind == "field":
        target = [real_summaries[key] for key in keys]
        k_bins = target[0]["k"]
        k_lo, k_hi = k_range if k_range is not None else slope_fit_range(reference_src.map_shape[-2:], boxlength)
        p_real = np.concatenate([t["power"] for t in target]).mean(axis=0)
        ctx = {"k": k_bins, "p_real": p_real, "k_lo": k_lo, "k_hi": k_hi, "grid": fields.grid,
               "slope_real": fit_power_law(k_bins, p_real, k_lo, k_hi)[0],
               "counts_real": sum(t["counts"].sum(axis=0) for t in target),
               "moments_real": fields.grid.moments(sum(t["sums"].sum(axis=0) for t in target))}
    else:
        kwargs = dict(morphology_kwargs or {})
        tables = dict(morphology_tables or {})

        def measured(name, src):
            return tables[name] if name in tables else galaxy_morphology(src.array(), **kwargs)

        real_table = pd.concat([measured(key, real_src[key]) for key in keys], ignore_index=True)
        real_ok = real_table[~real_table["failed"]]

    # the held-out targets first: their d1 / d2 and features are the references of the others
    order = sorted(set_src, key=lambda name: name != heldout_key)
    judge_knn = precision_features is not None and heldout_key in set_src
    held, scale = None, None
    rows, novelty_rows, spectra = {}, {}, {}
    for name in order:
        src = set_src[name]
        summary = summarize(src, fields, refs, precision_features if judge_knn else None, f"set {name!r}",
                            block_bytes)
        if name == heldout_key:
            held = summary
        if fields is not None:
            spectra[name] = (summary["k"], summary["power"])
            domain = _field_statistics(summary, ctx)
        else:
            domain = _galaxy_statistics(measured(name, src).reset_index(drop=True), real_ok)
        parts = [(domain, summary.n),
                 (_novelty_statistics(summary["ratio"], summary["max_cosine"],
                                      None if held is None else held["ratio"], memorization_threshold,
                                      mscore_threshold, summary.names, reference_names, summary.get("clipped"),
                                      real_share), summary.n)]
        if judge_knn:
            if scale is None:  # the held-out features' own mean and spread, or none
                raw = held["precision"]
                scale = (raw.mean(axis=0), np.where(raw.std(axis=0) > 0, raw.std(axis=0), 1.0)) \
                    if standardize_precision else (0.0, 1.0)
                held_features = (raw - scale[0]) / scale[1]
            judged = (np.asarray(precision_features(references), dtype=np.float64) if name == heldout_key
                      else summary["precision"])
            membership = _knn_membership(held_features, (judged - scale[0]) / scale[1], k)
            if membership is not None:  # the held-out row judges the few-shot targets: their rows are resampled
                parts.append((_knn_statistics(membership), len(references) if name == heldout_key else summary.n))
        rows[name] = _table_rows(name, parts, n_boot, seed + list(set_src).index(name),
                                 len(references), n_real)
        summary.drop("counts", "tails", "sums", "precision")
        novelty_rows[name] = summary
    table_rows = [row for name in set_src for row in rows[name]]
    for name, summary in real_summaries.items():  # the real targets' own clipped share
        share = summary.get("clipped")
        if share is not None and name not in set_src:
            lo, hi = bootstrap_interval(lambda idx, s=share: {"v": float(s[idx].mean())}, len(share), n_boot,
                                        seed).get("v", (np.nan, np.nan))
            table_rows.append({"set": name, "statistic": "clipped_share", "value": float(share.mean()),
                               "units": "fraction", "set_value": float(share.mean()), "real_value": real_share,
                               "n_set": len(share), "n_real": n_real, "ci_low": lo, "ci_high": hi})
    out = [pd.DataFrame(table_rows, columns=_COLUMNS)]
    if return_novelty:
        out.append(novelty_frames({name: novelty_rows[name] for name in set_src}, reference_names))
    if return_spectra:
        if fields is not None:
            spectra = {**{key: (s["k"], s["power"]) for key, s in real_summaries.items()}, **spectra}
        out.append(_spectra_table({name: spectra[name] for name in [*real_src, *set_src] if name in spectra}))
    return out[0] if len(out) == 1 else tuple(out)


def _table_rows(name, parts, n_boot, seed, n_references, n_real) -> list[dict]:
    """The table's rows of one set: every statistic of ``parts`` ((function of an index array, rows)
    pairs) on all rows, with its bootstrap interval."""
    rows = []
    for fn, n in parts:
        intervals = bootstrap_interval(lambda idx, fn=fn: {key: v[0] for key, v in fn(idx).items()}, n, n_boot, seed)
        for statistic_name, (value, units, set_value, real_value) in fn(np.arange(n)).items():
            lo, hi = intervals.get(statistic_name, (np.nan, np.nan))
            rows.append({"set": name, "statistic": statistic_name, "value": float(value), "units": units,
                         "set_value": float(set_value), "real_value": float(real_value), "n_set": int(n),
                         "n_real": int(n_references if statistic_name in _NOVELTY_STATISTICS else n_real),
                         "ci_low": lo, "ci_high": hi})
    return rows


def _spectra_table(spectra):
    """``set, k, power_mean, power_std, n_maps`` per k-bin of every set's per-map spectra."""
    import pandas as pd

    rows = []
    for name, (k, power) in spectra.items():
        for j in range(len(k)):
            rows.append({"set": name, "k": float(k[j]), "power_mean": float(np.nanmean(power[:, j])),
                         "power_std": float(np.nanstd(power[:, j])), "n_maps": len(power)})
    return pd.DataFrame(rows, columns=["set", "k", "power_mean", "power_std", "n_maps"])


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
        ``bootstrap`` (draws for the intervals), ``seed``, ``pdf_bins``, ``block_mb`` (maps read at a
        time: no set is ever held whole).
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

    from ..fidelity import image_summary_features
    from ..physical import record_from_attrs
    from ..store import SPLIT_FEWSHOT, SPLIT_HELDOUT, read_attrs
    from .sources import RealMaps, SampleMaps

    cfg = dict(cfg or {})
    record = record_from_attrs(read_attrs(tensors_path), tensors_path)
    fewshot, heldout = RealMaps(tensors_path, SPLIT_FEWSHOT, record), RealMaps(tensors_path, SPLIT_HELDOUT, record)
    real = {SPLIT_FEWSHOT: fewshot}
    sets = {table_set_name(name): SampleMaps(path, record, tensors_path) for name, path in set_paths.items()}
    sets[SPLIT_HELDOUT] = heldout
    features = None
    if cfg.get("feature_extractor"):
        extractor = load_feature_extractor(cfg["feature_extractor"])
        features = lambda x: extractor(record.to_normalized(x)[0])  # noqa: E731  (extractors see [-1, 1])

    def precision_features(x):
        # k-NN precision / recall: the 35 documented summary features of the maps as the model sees
        # them (fidelity.image_summary_features), standardized on the held-out targets
        return image_summary_features(record.to_normalized(x)[0])

    comparison, novelty, spectra = compare_sets(
        real, sets, kind, boxlength=float(cfg.get("boxlength", 1.0)), power_of=cfg.get("power_of", "log10"),
        window=cfg.get("window"), features=features,
        memorization_threshold=float(cfg.get("memorization_threshold", NEAR_COPY_THRESHOLD)),
        morphology_kwargs={k: v for k, v in (cfg.get("morphology") or {}).items() if v is not None},
        morphology_tables={table_set_name(name): read_morphology_table(path)
                           for name, path in (morphology_paths or {}).items()},
        precision_features=precision_features, standardize_precision=True,
        n_boot=int(cfg.get("bootstrap", 200)), seed=int(cfg.get("seed", 0)),
        pdf_bins=int(cfg.get("pdf_bins", PDF_BINS)), block_bytes=int(float(cfg.get("block_mb", 64)) * 2**20),
        return_novelty=True, return_spectra=True)
    # same initial noise: does fine-tuning change the output, and how close is each model to the
    # few-shot set's own optimal denoiser (which can only return the targets)?
    paired = dict(sets)
    pairs = [("base_samples", "baseline_samples", "rpscore_vs_base")]
    if empirical_path is not None:
        paired["empirical"] = SampleMaps(empirical_path, record, tensors_path)
        pairs += [("empirical", name, "rpscore_vs_empirical") for name in ("base_samples", "baseline_samples")]
    rp_rows = []
    for reference, name, statistic in pairs:
        if reference not in paired or name not in paired:
            continue
        rp = paired_reproducibility(paired[reference], paired[reference].names, paired[name], paired[name].names,
                                    features or pixel_features(kind), center=features is None,
                                    n_boot=int(cfg.get("bootstrap", 200)), seed=int(cfg.get("seed", 0)))
        if rp is not None:
            rp_rows.append({"set": name, "statistic": statistic, "value": rp["value"], "units": "fraction",
                            "set_value": rp["mean_similarity"], "real_value": np.nan, "n_set": rp["n"],
                            "n_real": rp["n"], "ci_low": rp["ci_low"], "ci_high": rp["ci_high"]})
    if rp_rows:
        comparison = pd.concat([comparison, pd.DataFrame(rp_rows)], ignore_index=True)
    return comparison, spectra, novelty


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
