"""Comparison of sets of maps with a reference set of real maps: the table of the workflow's stats rule.

Every judged set (the discovered samples, the baselines and controls, the few-shot maps and the
validation maps themselves) is measured against one *reference* set of real maps, in the
workflow the test split that no method and no setting ever saw:

- fields: the distance of the set-mean power spectrum and its slope, the W1 distance of the
  pooled log10 values and the differences of their four moments;
- galaxies: the W1 distance of every statmorph parameter over successful fits, and the share of
  failed fits;
- both: novelty against the few-shot maps (near-copy share, mscore, W1 of d1/d2 to the reference
  maps' d1/d2, the share of few-shot maps used as sources), k-NN precision and recall against the
  reference maps, and the share of clipped pixels.

Uncertainty (:mod:`.resampling`): every bootstrap draw resamples the judged set *and* the reference
maps with replacement, the reference draws shared by all sets, so that each set's difference to
``compare_with`` (the discovered set) in a draw is paired on the reference. Per statistic the table
gives the percentile interval of the set's value, the difference of the two sets' distances to the
reference (:func:`~.resampling.badness`: positive when ``compare_with`` is closer), its interval, and
a permutation p-value: the two sets' maps are pooled and split at random, the reference maps
redrawn with replacement in every permutation, so the null includes the reference's own noise.

Every statistic is a function of per-map summaries (:mod:`.summaries`), so a draw, a permutation or
a pooled pair of sets costs sums of rows, never a pass over the maps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .morphology import MORPHOLOGY_PARAMETERS, galaxy_morphology
from .novelty import (
    MSCORE_THRESHOLD,
    NEAR_COPY_THRESHOLD,
    mscore,
    near_copy_share,
    novelty_frames,
    novelty_w1,
    pixel_features,
    source_share,
)
from .onepoint import ValueGrid, wasserstein1
from .power import power_law_slope, slope_fit_range
from .resampling import badness, direction, percentile_interval, permutation_pvalue, resample_draws
from .sources import BLOCK_BYTES, ArrayMaps, as_source
from .summaries import FieldSettings, NoveltyReferences, draw_weights, log_range, summarize

#: Bins of the shared log10 grid of the one-point statistics: W1 is exact to one bin width.
PDF_BINS = 4096

TWO_SAMPLE_COLUMNS = ["set", "reference", "statistic", "value", "p_value", "n_set", "n_reference",
                      "n_reference_used", "permutations", "features"]
COLUMNS = ["set", "statistic", "value", "units", "set_value", "real_value", "n_set", "n_real", "ci_low", "ci_high",
           "reference", "delta_vs_discovered", "delta_low", "delta_high", "p_vs_discovered"]
#: Statistics whose ``n_real`` is the few-shot maps (their references), not the reference set.
NOVELTY_STATISTICS = ("near_copy_share", "mscore", "source_share")


@dataclass
class _Judged:
    """Per-map summaries of one judged set: every statistic of any subset of its rows follows."""

    n: int
    names: list | None
    per_map: dict = field(default_factory=dict)  # power, counts, tails, sums, ratio, max_cosine, clipped, features
    table: object = None  # morphology (galaxies)
    novelty: bool = True  # False for the few-shot maps themselves (their own references)

    def pooled_with(self, other: _Judged) -> _Judged:
        """The two sets as one (rows of ``self`` first), for permutations."""
        import pandas as pd

        keys = set(self.per_map) & set(other.per_map)
        per_map = {k: np.concatenate([self.per_map[k], other.per_map[k]]) for k in keys if k != "k"}
        table = None if self.table is None else pd.concat([self.table, other.table], ignore_index=True)
        names = (self.names or [""] * self.n) + (other.names or [""] * other.n)
        return _Judged(self.n + other.n, names, per_map, table, self.novelty and other.novelty)


@dataclass
class _Reference:
    """The reference maps' summaries, and what the statistics derive from them."""

    n: int
    per_map: dict
    table: object = None
    ctx: dict = field(default_factory=dict)


class _Statistics:
    """statistic -> (value, units, set_value, real_value) of rows ``idx`` of a judged set against rows
    ``ref_idx`` of the reference; ``radii`` of the k-NN balls of the judged rows: ``"fixed"`` (each
    map's radius in its whole set: bootstrap draws) or ``"group"`` (within the rows drawn: permutations)."""

    def __init__(self, kind: str, reference: _Reference, k: int, threshold: float, mscore_threshold: float,
                 fewshot_names=None, n_fewshot: int = 0):
        self.kind, self.ref, self.k = kind, reference, k
        self.threshold, self.mscore_threshold = threshold, mscore_threshold
        self.fewshot_names, self.n_fewshot = fewshot_names, n_fewshot

    def __call__(self, data: _Judged, idx, ref_idx, radii: str = "fixed") -> dict:
        idx, ref_idx = np.asarray(idx, dtype=np.int64), np.asarray(ref_idx, dtype=np.int64)
        out = self._fields(data, idx, ref_idx) if self.kind == "field" else self._galaxies(data, idx, ref_idx)
        out.update(self._novelty(data, idx, ref_idx))
        if "features" in data.per_map and "features" in self.ref.per_map:
            out.update(self._knn(data, idx, ref_idx, radii))
        return out

    def _fields(self, data, idx, ref_idx) -> dict:
        ctx, ref, pm = self.ref.ctx, self.ref.per_map, data.per_map
        k, k_lo, k_hi, grid = ctx["k"], ctx["k_lo"], ctx["k_hi"], ctx["grid"]
        w, wr = draw_weights(idx, data.n), draw_weights(ref_idx, self.ref.n)
        p_set, p_real = (w @ pm["power"]) / w.sum(), (wr @ ref["power"]) / wr.sum()
        in_range = (k >= k_lo) & (k <= k_hi) & (p_set > 0) & (p_real > 0)
        out = {"power_log10_distance": (float(np.mean(np.abs(np.log10(p_set[in_range]) - np.log10(p_real[in_range])))),
                                        "dex", np.nan, np.nan)}
        slope, slope_real = power_law_slope(k, p_set, k_lo, k_hi), power_law_slope(k, p_real, k_lo, k_hi)
        out["power_slope_difference"] = (slope - slope_real, "", slope, slope_real)
        out["pdf_w1_log10"] = (grid.w1(w @ pm["counts"], w @ pm["tails"], wr @ ref["counts"]), "dex", np.nan, np.nan)
        moments, real = grid.moments(w @ pm["sums"]), grid.moments(wr @ ref["sums"])
        for moment, unit in (("mean", "dex"), ("std", "dex"), ("skewness", ""), ("kurtosis", "")):
            out[f"log10_{moment}_difference"] = (moments[moment] - real[moment], unit, moments[moment], real[moment])
        return out

    def _galaxies(self, data, idx, ref_idx) -> dict:
        (values, failed), (ref_values, ref_failed) = _morphology_arrays(data), _morphology_arrays(self.ref)
        chosen, real = failed[idx], ref_failed[ref_idx]
        ok, real_ok = values[idx][~chosen], ref_values[ref_idx][~real]
        out = {}
        for j, parameter in enumerate(MORPHOLOGY_PARAMETERS):
            a, b = ok[:, j], real_ok[:, j]
            out[f"{parameter}_w1"] = (wasserstein1(a, b) if a.size and b.size else np.nan, "",
                                      np.median(a) if a.size else np.nan, np.median(b) if b.size else np.nan)
        share = float(chosen.mean()) if len(chosen) else np.nan
        out["failed_fit_share"] = (share, "fraction", share, float(real.mean()))
        return out

    def _novelty(self, data, idx, ref_idx) -> dict:
        pm, out = data.per_map, {}
        if data.novelty and "ratio" in pm:
            ratios = pm["ratio"][idx]
            out["near_copy_share"] = (near_copy_share(ratios, self.threshold), "fraction", np.nan, np.nan)
            out["mscore"] = (mscore(pm["max_cosine"][idx], self.mscore_threshold), "fraction", np.nan, np.nan)
            if "ratio" in self.ref.per_map:
                held = self.ref.per_map["ratio"][ref_idx]
                out["novelty_w1"] = (novelty_w1(ratios, held), "", float(np.median(ratios)), float(np.median(held)))
            if data.names is not None and self.fewshot_names is not None:
                share = source_share([data.names[i] for i in idx], self.fewshot_names)
                if np.isfinite(share):
                    out["source_share"] = (share, "fraction", share, np.nan)
        if "clipped" in pm:
            value = float(pm["clipped"][idx].mean())
            real = float(self.ref.per_map["clipped"][ref_idx].mean()) if "clipped" in self.ref.per_map else np.nan
            out["clipped_share"] = (value, "fraction", value, real)
        return out

    def _knn(self, data, idx, ref_idx, radii) -> dict:
        from ..fidelity import _pairwise_distances

        ref = self.ref.per_map
        if len(np.unique(idx)) <= self.k or self.ref.n <= self.k:
            return {}
        d = _pairwise_distances(ref["features"][ref_idx], data.per_map["features"][idx])  # (n_ref, n)
        if radii == "group":  # each row's k-th neighbour among the rows drawn (no duplicates in a permutation)
            own = _pairwise_distances(data.per_map["features"][idx], data.per_map["features"][idx])
            set_radii = np.partition(own, self.k, axis=1)[:, self.k]
        else:
            set_radii = data.per_map["radius"][idx]
        in_real_balls = d < ref["radius"][ref_idx][:, None]
        precision = float(in_real_balls.any(axis=0).mean())
        recall = float((d < set_radii[None, :]).any(axis=1).mean())
        # coverage (Naeem et al. 2020): the share of reference maps whose own k-NN ball holds a sample;
        # unlike recall it does not grow with a few outlying samples' large balls
        coverage = float(in_real_balls.any(axis=1).mean())
        return {"precision": (precision, "fraction", np.nan, np.nan), "recall": (recall, "fraction", np.nan, np.nan),
                "coverage": (coverage, "fraction", np.nan, np.nan)}


def _morphology_arrays(summaries) -> tuple[np.ndarray, np.ndarray]:
    """The morphology table of a set as (parameters (n, P) float64, failed (n,) bool), made once per set:
    the bootstrap and the permutations draw rows thousands of times, and pandas' row selection took 90%
    of rule stats' time on the demo galaxies (45 s of 49 s profiled); the numbers are the same."""
    cached = getattr(summaries, "_morphology", None)
    if cached is None:
        table = summaries.table
        cached = (table[list(MORPHOLOGY_PARAMETERS)].to_numpy(dtype=np.float64),
                  table["failed"].to_numpy(dtype=bool))
        summaries._morphology = cached
    return cached


def _values(result: dict) -> dict:
    return {name: value[0] for name, value in result.items()}


def compare_sets(reference, sets: Mapping[str, object], kind: str = "field", fewshot=None,
                 boxlength=1.0, power_of: str = "log10", k_range=None, window=None, channel: int = 0,
                 features: Callable | None = None, memorization_threshold: float = NEAR_COPY_THRESHOLD,
                 morphology_kwargs: dict | None = None, morphology_tables: Mapping | None = None,
                 clip_masks: Mapping | None = None, names: Mapping[str, list] | None = None,
                 precision_features: Callable | None = None, center_cosine: bool | None = None,
                 mscore_threshold: float = MSCORE_THRESHOLD, n_boot: int = 200, n_permutations: int = 0,
                 seed: int = 0, k: int = 3, compare_with: str | None = "discovered", reference_name: str = "test",
                 fewshot_name: str = "fewshot", standardize_precision: bool = False, pdf_bins: int = PDF_BINS,
                 grid_extra=(), level: float = 0.95, return_novelty: bool = False, return_spectra: bool = False,
                 return_two_sample: bool = False, block_bytes: int = BLOCK_BYTES, scale_with: str | None = None):
    """Distance of every set's statistics to the reference maps, with two-sided intervals and tests.

    Parameters
    ----------
    reference : array (N, H, W) / (N, C, H, W) or a source (:mod:`.sources`)
        The real maps every distance is measured to, in physical units (the workflow: the test split).
    sets : dict of str -> array or source
        The sets to judge, same layout. A set named ``fewshot_name`` is taken to be the few-shot maps
        themselves: no novelty rows (they are their own references).
    kind : {"field", "galaxy"}
    fewshot : array or source, optional
        The few-shot maps, references of the novelty statistics (d1/d2, cosine); without them those
        rows are left out.
    boxlength, power_of, k_range, window, channel :
        Fields: map side length(s) (units of k), what the spectrum is of (``log10`` f, the
        ``overdensity`` f/<f> - 1, or the ``field``), the slope-fit range (default 2 dk to half the
        Nyquist wavenumber, at least 5 dk), the window, the channel of a 4-D input.
    features : callable, optional
        Features of the novelty statistics; default the flattened log10 values (fields) or values.
    memorization_threshold, mscore_threshold : float
        d1/d2 below which a sample is a near-copy (1/3); cosine above which it counts in mscore (0.6).
    morphology_kwargs, morphology_tables :
        Galaxies: keywords of :func:`galaxy_morphology`, or tables already measured (rule
        ``morphology``) keyed like ``sets`` and by ``reference_name``; sets without one are measured.
    clip_masks, names : dicts keyed like ``sets`` and by ``reference_name`` / ``fewshot_name``
        Pixels at a clip bound (a ``clipped_share`` row per set), and row names (``source_share``
        reads the sources from discovered names; ``nearest`` in the novelty table).
    precision_features : callable, optional
        Maps physical maps to (N, D) features for k-NN precision and recall against the reference
        (k = ``k``), scaled to the reference's mean and spread with ``standardize_precision``.
    scale_with : str, optional
        A set of ``sets`` (real maps, e.g. the few-shot maps) whose features are pooled with the
        reference's to fit that scale: a spread fitted on a handful of reference maps is itself noisy
        (on 16 real galaxy cutouts, recall of a screened set 1.00 with the 16 maps' own scale, 0.62
        with the few-shot maps pooled in, 0.58 against 100 maps of the same domain).
    n_boot, n_permutations, seed, level :
        Bootstrap draws (both sides resampled) for ``ci_low``/``ci_high`` and ``delta_low``/``delta_high``;
        permutations for ``p_vs_discovered`` (0: NaN); their seed; the interval's level.
    compare_with : str or None
        The set every other set's differences and p-values are taken against (``discovered``).
    reference_name, fewshot_name : the names the reference and the few-shot maps have in the tables.
    pdf_bins, grid_extra :
        Bins of the log10 grid over the reference's range, widened to hold the sources in
        ``grid_extra`` too (e.g. the few-shot maps, when the same summaries serve another reference).
    block_bytes : int
        Maps read at a time: no set is ever held whole.

    Returns
    -------
    pandas.DataFrame
        One row per (set, statistic), columns :data:`COLUMNS`. ``value`` is the statistic (a distance,
        a signed difference set minus reference, or a share); ``set_value``/``real_value`` the two sides
        where the statistic has them; ``ci_low``/``ci_high`` its percentile interval;
        ``delta_vs_discovered`` the set's distance to the reference minus ``compare_with``'s (absolute
        values of signed differences, 1 - precision/recall): positive when ``compare_with`` is closer;
        ``delta_low``/``delta_high`` its interval; ``p_vs_discovered`` the permutation p-value.
    pandas.DataFrame
        With ``return_novelty``: one row per map of every set with novelty (:func:`novelty_frames`).
    pandas.DataFrame
        With ``return_spectra``: ``set, k, power_mean, power_std, n_maps`` per k-bin (fields).
    pandas.DataFrame
        With ``return_two_sample``: per set, the energy distance of its ``precision_features`` to the
        reference's (both standardized on the reference) and its permutation p-value
        (:func:`~.two_sample.energy_test`, ``n_permutations`` of them): columns :data:`TWO_SAMPLE_COLUMNS`.
    """
    import pandas as pd

    from .neighbours import _features

    if kind not in ("field", "galaxy"):
        raise ValueError(f"kind must be 'field' or 'galaxy', got {kind!r}")
    names, masks = dict(names or {}), dict(clip_masks or {})
    ref_src = as_source(reference, masks.get(reference_name), names.get(reference_name))
    set_src = {key: as_source(data, masks.get(key), names.get(key)) for key, data in sets.items()}
    if center_cosine is None:
        center_cosine = features is None
    if features is None:
        features = pixel_features(kind)
    refs, fewshot_names = None, None
    if fewshot is not None:  # the few-shot maps are every sample's novelty references: read once
        few_src = as_source(fewshot, masks.get(fewshot_name), names.get(fewshot_name))
        few_maps = few_src.rows(np.arange(len(few_src)))[0]
        fewshot_names = list(few_src.names or [f"target_{i}" for i in range(len(few_maps))])
        refs = NoveltyReferences(_features(few_maps, features), features, center_cosine)

    fields = None
    if kind == "field":
        fields = FieldSettings(boxlength, power_of, window, channel)
        ranges = [log_range(src, fields, what, block_bytes) for src, what in
                  [(ref_src, f"reference maps {reference_name!r}"), *((s, "maps") for s in grid_extra)]]
        fields.grid = ValueGrid(min(r[0] for r in ranges), max(r[1] for r in ranges), pdf_bins,
                                float(np.mean([r[2] for r in ranges])))
    tables = dict(morphology_tables or {})
    kwargs = {k_: v for k_, v in (morphology_kwargs or {}).items()}

    def morphology(name, src):
        return (tables[name] if name in tables else galaxy_morphology(src.array(), **kwargs)).reset_index(drop=True)

    ref_summary = summarize(ref_src, fields, refs, precision_features, f"reference maps {reference_name!r}",
                            block_bytes)

    def summary_of(name):
        return summarize(set_src[name], fields, refs if name != fewshot_name else None, precision_features,
                         f"set {name!r}", block_bytes)

    summaries = {}  # a set's summary is made when it is judged (one at a time), the scale's set first
    if scale_with is not None:
        if scale_with not in set_src:
            raise ValueError(f"scale_with names {scale_with!r}, which is not one of the sets {sorted(set_src)}")
        summaries[scale_with] = summary_of(scale_with)
    scale = (0.0, 1.0)
    if precision_features is not None and standardize_precision:
        raw = ref_summary["precision"]
        if scale_with is not None:
            raw = np.concatenate([raw, summaries[scale_with]["precision"]])
        scale = (raw.mean(axis=0), np.where(raw.std(axis=0) > 0, raw.std(axis=0), 1.0))
    reference_data = _Reference(ref_summary.n, _judged_arrays(ref_summary, scale, k),
                                morphology(reference_name, ref_src) if kind == "galaxy" else None)
    if fields is not None:
        k_bins = ref_summary["k"]
        k_lo, k_hi = k_range if k_range is not None else slope_fit_range(ref_src.map_shape[-2:], boxlength)
        reference_data.ctx = {"k": k_bins, "k_lo": k_lo, "k_hi": k_hi, "grid": fields.grid}
    statistic = _Statistics(kind, reference_data, k, memorization_threshold, mscore_threshold, fewshot_names,
                            0 if fewshot is None else len(fewshot_names))

    judged, novelty_rows, spectra = {}, {}, {}
    for name, src in set_src.items():
        summary = summaries.pop(name) if name in summaries else summary_of(name)
        if fields is not None:
            spectra[name] = (summary["k"], summary["power"])
        if refs is not None and name != fewshot_name:
            novelty_rows[name] = summary
        table = morphology(name, src) if kind == "galaxy" else None
        if table is not None and len(table) < summary.n:
            raise ValueError(f"set {name!r}: the morphology table has {len(table)} rows for {summary.n} maps")
        judged[name] = _Judged(summary.n, summary.names, _judged_arrays(summary, scale, k),
                               None if table is None else table.iloc[:summary.n].reset_index(drop=True),
                               novelty=name != fewshot_name)

    rows = _table(judged, reference_data, statistic, n_boot, n_permutations, seed, compare_with, level,
                  reference_name, len(fewshot_names or []))
    out = [pd.DataFrame(rows, columns=COLUMNS)]
    if return_novelty:
        out.append(novelty_frames(novelty_rows, fewshot_names or []))
    if return_spectra:
        if fields is not None:
            spectra = {reference_name: (ref_summary["k"], ref_summary["power"]), **spectra}
        out.append(_spectra_table(spectra))
    if return_two_sample:
        out.append(_two_sample_table(judged, reference_data, n_permutations, seed, reference_name))
    return out[0] if len(out) == 1 else tuple(out)


def _judged_arrays(summary, scale, k: int) -> dict:
    """The per-map arrays the statistics use, with standardized k-NN features and their radii."""
    from ..fidelity import knn_radii

    per_map = {key: summary.get(key) for key in ("power", "counts", "tails", "sums", "ratio", "max_cosine",
                                                 "clipped") if summary.get(key) is not None}
    if summary.get("precision") is not None:
        feats = (summary["precision"] - scale[0]) / scale[1]
        per_map["features"] = feats
        if len(feats) > k:
            per_map["radius"] = knn_radii(feats, k)
        else:
            per_map.pop("features")
    return per_map


def _table(judged: dict, reference: _Reference, statistic: _Statistics, n_boot: int, n_permutations: int,
           seed: int, compare_with: str | None, level: float, reference_name: str, n_fewshot: int) -> list[dict]:
    """The rows of every set: values on all rows, two-sided bootstrap intervals, paired differences to
    ``compare_with`` and their permutation p-values."""
    all_ref = np.arange(reference.n)
    ref_draws = resample_draws(reference.n, n_boot, np.random.default_rng([seed, 0]))
    full, draws = {}, {}
    for position, (name, data) in enumerate(judged.items()):
        full[name] = statistic(data, np.arange(data.n), all_ref)
        set_draws = resample_draws(data.n, n_boot, np.random.default_rng([seed, 1 + position]))
        per_draw = [_values(statistic(data, set_draws[b], ref_draws[b])) for b in range(len(ref_draws))]
        draws[name] = {stat: np.array([d.get(stat, np.nan) for d in per_draw]) for stat in full[name]}
    base = compare_with if compare_with in judged else None
    rows = []
    for position, (name, data) in enumerate(judged.items()):
        tests = {}
        if base is not None and name != base and n_permutations > 0:
            tests = _permutation_tests(judged[name], judged[base], reference, statistic, n_permutations,
                                       np.random.default_rng([seed, 1000 + position]))
        for stat, (value, units, set_value, real_value) in full[name].items():
            lo, hi = percentile_interval(draws[name][stat], level)
            row = {"set": name, "statistic": stat, "value": float(value), "units": units,
                   "set_value": float(set_value), "real_value": float(real_value), "n_set": data.n,
                   "n_real": n_fewshot if stat in NOVELTY_STATISTICS else reference.n, "ci_low": lo, "ci_high": hi,
                   "reference": reference_name, "delta_vs_discovered": np.nan, "delta_low": np.nan,
                   "delta_high": np.nan, "p_vs_discovered": np.nan}
            if base is not None and name != base and direction(stat) is not None and stat in full[base]:
                row["delta_vs_discovered"] = float(badness(stat, value) - badness(stat, full[base][stat][0]))
                row["delta_low"], row["delta_high"] = percentile_interval(
                    badness(stat, draws[name][stat]) - badness(stat, draws[base][stat]), level)
                if stat in tests:
                    row["p_vs_discovered"] = permutation_pvalue(row["delta_vs_discovered"], tests[stat])
            rows.append(row)
    return rows


def _permutation_tests(data: _Judged, base: _Judged, reference: _Reference, statistic: _Statistics,
                       n_permutations: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Null draws of (distance of ``data``) - (distance of ``base``) per statistic: the two sets' rows pooled
    and split at random into groups of their sizes, the reference rows redrawn with replacement each time."""
    pooled = data.pooled_with(base)
    pooled.names = None  # source_share is a property of one generator's names, not tested
    null: dict[str, list] = {}
    for _ in range(int(n_permutations)):
        order = rng.permutation(pooled.n)
        ref_idx = rng.integers(0, reference.n, reference.n)
        first = _values(statistic(pooled, order[:data.n], ref_idx, radii="group"))
        second = _values(statistic(pooled, order[data.n:], ref_idx, radii="group"))
        for stat, value in first.items():
            if direction(stat) is not None and stat in second:
                null.setdefault(stat, []).append(float(badness(stat, value) - badness(stat, second[stat])))
    return {stat: np.asarray(values) for stat, values in null.items()}


def _two_sample_table(judged: dict, reference: _Reference, n_permutations: int, seed: int,
                      reference_name: str):
    """Energy-distance permutation test of every set's summary features against the reference's."""
    import pandas as pd

    from .two_sample import energy_test

    rows = []
    if "features" in reference.per_map:
        for position, (name, data) in enumerate(judged.items()):
            if "features" not in data.per_map:
                continue
            test = energy_test(data.per_map["features"], reference.per_map["features"], int(n_permutations),
                               seed=int(np.random.default_rng([seed, 2000 + position]).integers(2**31)))
            rows.append({"set": name, "reference": reference_name, "statistic": "energy_distance",
                         "value": test["statistic"], "p_value": test["p_value"], "n_set": test["n_x"],
                         "n_reference": test["n_y"], "n_reference_used": test["n_y_used"],
                         "permutations": test["permutations"],
                         "features": "summary features, standardized on the reference"})
    return pd.DataFrame(rows, columns=TWO_SAMPLE_COLUMNS)


def _spectra_table(spectra):
    """``set, k, power_mean, power_std, n_maps`` per k-bin of every set's per-map spectra."""
    import pandas as pd

    rows = []
    for name, (k, power) in spectra.items():
        for j in range(len(k)):
            rows.append({"set": name, "k": float(k[j]), "power_mean": float(np.nanmean(power[:, j])),
                         "power_std": float(np.nanstd(power[:, j])), "n_maps": len(power)})
    return pd.DataFrame(rows, columns=["set", "k", "power_mean", "power_std", "n_maps"])


__all__ = ["COLUMNS", "NOVELTY_STATISTICS", "PDF_BINS", "TWO_SAMPLE_COLUMNS", "ArrayMaps", "compare_sets"]
