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
from .neighbours import load_feature_extractor, memorization_score, nearest_neighbour_ratios
from .onepoint import _log10_values, pdf_moments, wasserstein1
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


def _mean_spectrum(maps, boxlength, power_of, window):
    data, options = _power_input(maps, power_of)
    k, power, _ = radial_power_spectrum(data, boxlength, window=window, **options)
    return k, power.mean(axis=0)


def _row(set_name, statistic, value, units, set_value=np.nan, real_value=np.nan, n_set=0, n_real=0):
    return {"set": set_name, "statistic": statistic, "value": float(value), "units": units,
            "set_value": float(set_value), "real_value": float(real_value),
            "n_set": int(n_set), "n_real": int(n_real)}


def compare_sets(real: Mapping[str, np.ndarray], sets: Mapping[str, np.ndarray], kind: str = "field",
                 memorization_reference: str = "fewshot", target_keys=None, boxlength=1.0,
                 power_of: str = "log10", k_range=None, window=None, channel: int = 0,
                 features: Callable | None = None, memorization_threshold: float = 1.0 / 3.0,
                 morphology_kwargs: dict | None = None, morphology_tables: Mapping | None = None,
                 clip_masks: Mapping[str, np.ndarray] | None = None):
    """Distance of every set's statistics to those of the real target maps.

    Parameters
    ----------
    real : dict of str -> ndarray
        Real target-domain data in physical units, e.g. ``{"fewshot": ..., "heldout": ...}``;
        fields (N, H, W) or (N, C, H, W), galaxies (N, C, H, W) or (N, H, W).
    sets : dict of str -> ndarray
        The sets to judge (discovered samples, in-domain samples, baseline...), same layout.
    kind : {"field", "galaxy"}
    memorization_reference : str
        Key of ``real`` holding the few-shot targets, the references of the memorization
        score.
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
        Features for the memorization score; default the flattened log10 values (fields)
        or values (galaxies).
    memorization_threshold : float
    morphology_kwargs : dict, optional
        Galaxies only: keywords of :func:`galaxy_morphology`.
    morphology_tables : dict of str -> DataFrame, optional
        Galaxies only: :func:`galaxy_morphology` tables already measured (rule ``morphology``),
        keyed like ``real`` and ``sets``; a set without one is measured here.
    clip_masks : dict of str -> ndarray of bool, optional
        Pixels at a clip bound, keyed like ``real`` and ``sets`` (ingest's ``clipped`` mask
        for real maps, :meth:`NormalizationRecord.clip_mask` for generated ones): gives a
        ``clipped_share`` row for every set with a mask, the real maps' included.

    Returns
    -------
    pandas.DataFrame
        One row per (set, statistic): ``set``, ``statistic``, ``value``, ``units``,
        ``set_value`` and ``real_value`` (the statistic itself where it has one, else NaN),
        ``n_set``, ``n_real``. Statistics, with the meaning of ``value``:

        fields
            ``power_log10_distance`` mean over k-bins of |log10 P_set - log10 P_real| of the
            set-mean spectra (dex); ``power_slope_difference`` slope_set - slope_real;
            ``pdf_w1_log10`` W1 of pooled log10 values (dex); ``log10_mean_difference``,
            ``log10_std_difference`` (dex), ``log10_skewness_difference``,
            ``log10_kurtosis_difference`` (set minus real).
        galaxies
            ``<parameter>_w1`` W1 of each statmorph parameter over successful fits
            (``set_value``/``real_value``: the medians); ``failed_fit_share`` the share of
            failed fits of the set (``real_value``: of the real images).
        both
            ``memorization_score`` share of the set's samples with d1/d2 < threshold against
            ``real[memorization_reference]`` (fraction); ``clipped_share`` share of the set's
            pixels at a clip bound (fraction; ``real_value``: that of the pooled real
            targets), with ``clip_masks``.
    """
    import pandas as pd

    if kind not in ("field", "galaxy"):
        raise ValueError(f"kind must be 'field' or 'galaxy', got {kind!r}")
    if memorization_reference not in real:
        raise ValueError(f"real has no {memorization_reference!r} entry for the memorization score; "
                         f"its keys are {sorted(real)}")
    keys = list(real) if target_keys is None else list(target_keys)
    target = np.concatenate([np.asarray(real[k], dtype=np.float64) for k in keys])
    n_real = target.shape[0]
    if features is None:
        features = (lambda x: _log10_values(x).reshape(len(x), -1)) if kind == "field" else None
    references = real[memorization_reference]
    rows = []
    if kind == "field":
        real_maps = _as_maps(target, channel)
        k, p_real = _mean_spectrum(real_maps, boxlength, power_of, window)
        dk, k_nyquist = _fundamental(real_maps.shape[1:], boxlength)
        # default: skip the largest scale and the resampling-smoothed pixel scale, but keep at
        # least four bins on small maps (16x16: Nyquist is only 8 dk)
        k_lo, k_hi = k_range if k_range is not None else (2.0 * dk, max(0.5 * k_nyquist, 5.0 * dk))
        slope_real = fit_power_law(k, p_real, k_lo, k_hi)[0]
        real_log = _log10_values(real_maps)
        moments_real = pdf_moments(real_log, log10=False)
        for name, data in sets.items():
            maps = _as_maps(data, channel)
            n = maps.shape[0]
            _, p_set = _mean_spectrum(maps, boxlength, power_of, window)
            in_range = (k >= k_lo) & (k <= k_hi) & (p_set > 0) & (p_real > 0)
            distance = np.mean(np.abs(np.log10(p_set[in_range]) - np.log10(p_real[in_range])))
            rows.append(_row(name, "power_log10_distance", distance, "dex", n_set=n, n_real=n_real))
            slope = fit_power_law(k, p_set, k_lo, k_hi)[0]
            rows.append(_row(name, "power_slope_difference", slope - slope_real, "", slope, slope_real, n, n_real))
            set_log = _log10_values(maps)
            rows.append(_row(name, "pdf_w1_log10", wasserstein1(set_log, real_log), "dex", n_set=n, n_real=n_real))
            moments = pdf_moments(set_log, log10=False)
            for moment, unit in (("mean", "dex"), ("std", "dex"), ("skewness", ""), ("kurtosis", "")):
                rows.append(_row(name, f"log10_{moment}_difference", moments[moment] - moments_real[moment], unit,
                                 moments[moment], moments_real[moment], n, n_real))
    else:
        kwargs = dict(morphology_kwargs or {})
        tables = dict(morphology_tables or {})

        def measured(name, data):
            return tables[name] if name in tables else galaxy_morphology(np.asarray(data, dtype=np.float64), **kwargs)

        real_table = pd.concat([measured(k, real[k]) for k in keys], ignore_index=True)
        real_ok = real_table[~real_table["failed"]]
        for name, data in sets.items():
            table = measured(name, data)
            ok = table[~table["failed"]]
            n = len(table)
            for parameter in MORPHOLOGY_PARAMETERS:
                a, b = ok[parameter].to_numpy(), real_ok[parameter].to_numpy()
                distance = wasserstein1(a, b) if a.size and b.size else np.nan
                rows.append(_row(name, f"{parameter}_w1", distance, "",
                                 np.median(a) if a.size else np.nan, np.median(b) if b.size else np.nan,
                                 n, n_real))
            share = float(table["failed"].mean()) if n else np.nan
            rows.append(_row(name, "failed_fit_share", share, "fraction", share,
                             float(real_table["failed"].mean()), n, n_real))
    for name, data in sets.items():
        ratios = nearest_neighbour_ratios(data, references, features)
        score = memorization_score(ratios, memorization_threshold)
        rows.append(_row(name, "memorization_score", score, "fraction", score, np.nan, len(ratios), len(references)))
    masks = dict(clip_masks or {})
    real_masks = [np.asarray(masks[k], dtype=bool) for k in keys if k in masks]
    real_share = float(np.mean(np.concatenate([m.ravel() for m in real_masks]))) if real_masks else np.nan
    for name in [*[k for k in real if k not in sets], *sets]:
        if name in masks:
            mask = np.asarray(masks[name], dtype=bool)
            share = float(mask.mean()) if mask.size else np.nan
            rows.append(_row(name, "clipped_share", share, "fraction", share, real_share, len(mask), n_real))
    columns = ["set", "statistic", "value", "units", "set_value", "real_value", "n_set", "n_real"]
    return pd.DataFrame(rows, columns=columns)


def dataset_statistics(tensors_path, set_paths: Mapping[str, object], kind: str = "field", cfg: dict | None = None,
                       morphology_paths: Mapping[str, object] | None = None):
    """Statistics of every sample set of one dataset against its few-shot targets.

    Every set (discovered samples, base-model samples, the fine-tuned baseline) is mapped
    to physical units through the dataset's normalization record; the held-out targets
    are added as the ``heldout`` set, the floor that sampling noise alone gives. The real
    maps (few-shot and held-out) are the unclipped ones ingest kept, so their PDFs, spectra
    and W1 include the tails beyond the record's lo/hi that no generated sample can reach;
    every set, real ones included, gets its ``clipped_share``.

    Parameters
    ----------
    tensors_path : the dataset's ``tensors.h5`` (few-shot and held-out targets, the record).
    set_paths : set name -> tensor file of samples.
    kind : ``field`` (power spectra, PDFs) or ``galaxy`` (morphology).
    cfg : the config's ``stats`` section: ``power_of``, ``window``, ``memorization_threshold``,
        ``feature_extractor`` (a TorchScript file, or null for pixels), ``boxlength``, ``morphology``.
    morphology_paths : set name -> ``morphology/{set}.csv`` of rule ``morphology`` (galaxies; the
        few-shot and held-out targets included); sets without one are measured with ``cfg["morphology"]``.

    Returns
    -------
    comparison : DataFrame of :func:`compare_sets` (one row per set and statistic).
    spectra : DataFrame, fields only (else empty): ``set``, ``k``, ``power_mean``,
        ``power_std``, ``n_maps`` per k-bin, for the figures.
    """
    import pandas as pd

    from ..physical import real_physical_maps
    from ..store import SPLIT_FEWSHOT, SPLIT_HELDOUT, read_tensor_file

    cfg = dict(cfg or {})
    fewshot, fewshot_mask, _, record = real_physical_maps(tensors_path, SPLIT_FEWSHOT)
    heldout, heldout_mask, _, _ = real_physical_maps(tensors_path, SPLIT_HELDOUT)
    real = {SPLIT_FEWSHOT: fewshot}
    sets, masks = {}, {SPLIT_FEWSHOT: fewshot_mask}
    for name, path in set_paths.items():
        x = read_tensor_file(path).x
        if x.shape[1] != record.model_channels:
            raise InputError(path, f"has {x.shape[1]} channel(s); {tensors_path}'s record maps {record.model_channels}")
        sets[name], masks[name] = record.to_physical(x), record.clip_mask(x)
    sets[SPLIT_HELDOUT], masks[SPLIT_HELDOUT] = heldout, heldout_mask
    features = None
    if cfg.get("feature_extractor"):
        extractor = load_feature_extractor(cfg["feature_extractor"])
        features = lambda x: extractor(record.to_normalized(x)[0])  # noqa: E731  (extractors see [-1, 1])
    power_of = cfg.get("power_of", "log10")
    window = cfg.get("window")
    boxlength = float(cfg.get("boxlength", 1.0))
    comparison = compare_sets(real, sets, kind, boxlength=boxlength, power_of=power_of, window=window,
                              features=features,
                              memorization_threshold=float(cfg.get("memorization_threshold", 1.0 / 3.0)),
                              morphology_kwargs={k: v for k, v in (cfg.get("morphology") or {}).items()
                                                 if v is not None},
                              morphology_tables={name: read_morphology_table(path)
                                                 for name, path in (morphology_paths or {}).items()},
                              clip_masks=masks)
    rows = []
    if kind == "field":
        for name, data in {**real, **sets}.items():
            maps, options = _power_input(_as_maps(data, 0), power_of)
            k, power, _ = radial_power_spectrum(maps, boxlength, window=window, **options)
            for j in range(len(k)):
                rows.append({"set": name, "k": float(k[j]), "power_mean": float(np.nanmean(power[:, j])),
                             "power_std": float(np.nanstd(power[:, j])), "n_maps": len(maps)})
    return comparison, pd.DataFrame(rows, columns=["set", "k", "power_mean", "power_std", "n_maps"])



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
