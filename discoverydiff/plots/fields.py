"""Field figures: radial power spectra and one-point PDFs of every set against the test maps."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib as mpl
import matplotlib.ticker  # noqa: F401  (mpl.ticker)
import numpy as np
import pandas as pd

from ..errors import InputError
from ..store import SPLIT_FEWSHOT, SPLIT_TEST
from .style import (
    _STYLE,
    SINGLE_COLUMN_IN,
    TABLE_ONLY_SETS,
    FigureFiles,
    _log_label,
    _new_figure,
    _physical,
    _quantity,
    _read_record,
    _real_sets,
    _save,
    _set_style,
    _with_unit,
    quantity_label,
)


def plot_power_spectra(power_spectra_csv, comparison_csv, out_stem, quantity: str = "$G_0$", unit: str = "Habing",
                       power_of: str = "log10", length_unit: str = "map side") -> FigureFiles:
    """Set-mean radial power spectra with their spread over maps, against the test maps.

    Top: P(k) of every set of ``power_spectra.csv`` (mean over maps; band: the standard
    deviation s over maps as a factor, mean x/÷ (1 + s / mean), which is symmetric on the
    log axis, always positive and mean +- s to first order for a small spread).
    Bottom: the ratio of each set's mean spectrum to the test maps' (set ``test``, the reference of
    every statistic). The legend gives each set's fitted power-law slope: ``set_value`` of its
    ``power_slope_difference`` row in ``comparison.csv``, the test maps' from ``real_value``
    (fits in log10-log10, :func:`discoverydiff.stats.fit_power_law`). The controls and the
    validation maps are in the tables, not in the figure (:data:`~.style.TABLE_ONLY_SETS`).

    Parameters
    ----------
    power_spectra_csv : ``power_spectra.csv`` (``set``, ``k``, ``power_mean``, ``power_std``,
        ``n_maps``).
    comparison_csv : ``comparison.csv`` of :func:`discoverydiff.stats.compare_sets`.
    out_stem : str or Path
    quantity, unit : str
        The field's symbol and unit, for the axis label.
    power_of : {"log10", "overdensity", "field"}
        What the spectra are of (the config's ``stats.power_of``): sets the power's unit.
    length_unit : str
        The length k is measured against: the map side for ``stats.boxlength`` 1, else
        ``(map side / boxlength)`` (:func:`make_all_figures` writes it so).

    Returns
    -------
    FigureFiles
        Sidecar: ``set``, ``k``, ``power_mean``, ``power_std`` (as read), ``band_lower``,
        ``band_upper`` (as drawn), ``ratio_to_test``, ``slope``, ``n_maps``.
    """
    spectra = pd.read_csv(power_spectra_csv)
    comparison = pd.read_csv(comparison_csv)
    for column in ("set", "k", "power_mean", "power_std"):
        if column not in spectra:
            raise InputError(power_spectra_csv, f"has no column {column!r} (columns: {list(spectra.columns)})")
    if spectra.empty:
        raise InputError(power_spectra_csv, "holds no spectra (is the dataset a field?)")
    if SPLIT_TEST not in set(spectra["set"]):
        raise InputError(power_spectra_csv, f"has no '{SPLIT_TEST}' spectrum to compare the sets with")
    slope_rows = comparison[comparison["statistic"] == "power_slope_difference"]
    slopes = dict(zip(slope_rows["set"], slope_rows["set_value"].astype(float)))
    if len(slope_rows):
        slopes[SPLIT_TEST] = float(slope_rows["real_value"].iloc[0])
    spectra = spectra[np.isfinite(spectra["k"]) & np.isfinite(spectra["power_mean"])
                      & ~spectra["set"].isin(TABLE_ONLY_SETS)]
    real = spectra[spectra["set"] == SPLIT_TEST].set_index("k")["power_mean"]
    order = [SPLIT_TEST] + [s for s in dict.fromkeys(spectra["set"]) if s != SPLIT_TEST]
    positive = spectra["power_mean"][spectra["power_mean"] > 0]
    floor = float(positive.min()) / 10.0 if len(positive) else 1e-12
    power_unit = {"log10": "dex$^2$", "overdensity": "", "field": f"{unit}$^2$" if unit else ""}.get(power_of, "")
    area = f"{length_unit}$^2$" if " " not in length_unit.strip("()") else f"({length_unit.strip('()')})$^2$"
    what = {"log10": f"log$_{{10}}$ {quantity}", "overdensity": f"{quantity} / <{quantity}> - 1"}.get(
        power_of, quantity)
    rows = []
    with mpl.rc_context(_STYLE):
        fig = _new_figure(SINGLE_COLUMN_IN, 3.3)
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.2))
        for position, name in enumerate(order):
            part = spectra[spectra["set"] == name].sort_values("k")
            label, colour = _set_style(name, position)
            k, mean, std = (part[c].to_numpy(dtype=np.float64) for c in ("k", "power_mean", "power_std"))
            factor = 1.0 + np.divide(std, mean, out=np.zeros_like(std), where=mean > 0)
            lower, upper = np.maximum(mean / factor, floor), mean * factor
            slope = slopes.get(name, np.nan)
            text = f"{label}, $\\alpha$ = {slope:.2f}" if np.isfinite(slope) else label
            style = "--" if name == SPLIT_FEWSHOT else "-"
            top.fill_between(k, lower, upper, color=colour, alpha=0.15, lw=0)
            top.plot(k, mean, style, color=colour, label=text, marker="o", ms=2)
            ratio = mean / real.reindex(k).to_numpy(dtype=np.float64)
            if name != SPLIT_TEST:
                bottom.plot(k, ratio, style, color=colour, marker="o", ms=2)
            rows += [{"set": name, "k": k[j], "power_mean": mean[j], "power_std": std[j], "band_lower": lower[j],
                      "band_upper": upper[j], "ratio_to_test": ratio[j], "slope": slope,
                      "n_maps": part["n_maps"].iloc[j] if "n_maps" in part else np.nan} for j in range(len(k))]
        bottom.axhline(1.0, color="black", lw=0.6)
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_yscale("log")
        top.set_ylim(bottom=floor)
        # ratios: plain numbers at 1, 2, 5 x 10^n, no minor labels, and at least 0.5 to 2 shown
        low, high = bottom.get_ylim()
        bottom.set_ylim(min(low, 0.5), max(high, 2.0))
        bottom.yaxis.set_major_locator(mpl.ticker.LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        bottom.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        bottom.yaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        top.set_ylabel(_with_unit(f"P(k) of {what}", " ".join(u for u in (power_unit, area) if u)))
        bottom.set_ylabel("P / P$_{test}$")
        bottom.set_xlabel(f"wavenumber k [rad per {length_unit}]")
        top.legend(loc="lower left")
        return _save(fig, out_stem, pd.DataFrame(rows))


def _pdf_range(values: Mapping[str, np.ndarray], real_names, tail: float = 0.1) -> tuple[float, float]:
    """Bin range: every generated value, and the real maps' (unclipped) values up to their
    ``tail`` and 100 - ``tail`` percentiles, so their tails beyond the record's lo/hi show
    without a few extreme pixels stretching the bins; values outside are counted out
    (``n_in_range``)."""
    real = np.concatenate([v for k, v in values.items() if k in real_names])
    generated = [v for k, v in values.items() if k not in real_names and v.size]
    lo, hi = np.percentile(real, [tail, 100.0 - tail])
    if generated:
        lo, hi = min(lo, min(v.min() for v in generated)), max(hi, max(v.max() for v in generated))
    return float(lo), float(hi)


def plot_pdfs(tensors_h5, sets: Mapping[str, object], out_stem, bins: int = 40, include_test: bool = True,
              channel: int = 0) -> FigureFiles:
    """One-point PDFs of log10 of the field, per set, against the few-shot targets.

    Values are pooled over every map of a set (generated sets through the dataset's record,
    real targets as ingest kept them, unclipped) and binned on common edges in log10 that
    span the generated values and the real ones to their 0.1 / 99.9 percentiles, so the
    real tails beyond the record's lo/hi show next to the generated sets that stop there;
    the density is per dex over the values in range
    (:func:`discoverydiff.stats.pdf_log10`). Fields with non-positive values (asinh
    records) are binned linearly instead.

    Parameters
    ----------
    tensors_h5 : str or Path
    sets : dict of str -> path
    out_stem : str or Path
    bins : int
    include_test : bool
        Add the test maps (unseen: the reference every statistic is measured against).
    channel : int

    Returns
    -------
    FigureFiles
        Sidecar: ``set``, ``left``, ``right`` (bin edges, log10 of the unit), ``density``,
        ``n_values`` (pooled values of the set), ``n_in_range``.
    """
    from ..stats import pdf_log10

    record = _read_record(tensors_h5)
    real = _real_sets(tensors_h5, record, include_test)
    data = {name: images.physical[:, channel] for name, images in real.items()}
    for name, path in sets.items():
        data[name] = _physical(path, record, tensors_h5).physical[:, channel]
    logarithmic = all(np.all(v > 0) for v in data.values())
    name, unit = _quantity(record, channel)
    if logarithmic:
        values = {k: np.log10(v).ravel() for k, v in data.items()}
        xlabel, ylabel = _log_label(record, channel), "PDF [dex$^{-1}$]"
    else:
        values = {k: v.ravel() for k, v in data.items()}
        xlabel, ylabel = quantity_label(record, channel), _with_unit("PDF", f"{unit}$^{{-1}}$" if unit else "")
    lo, hi = _pdf_range(values, set(real))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    # the end values are data values: a float round-off must not drop them
    edges[0], edges[-1] = np.nextafter(edges[0], -np.inf), np.nextafter(edges[-1], np.inf)
    rows = []
    with mpl.rc_context(_STYLE):
        fig = _new_figure(SINGLE_COLUMN_IN, 2.5)
        ax = fig.subplots()
        for position, (set_name, v) in enumerate(values.items()):
            if logarithmic:
                _, density = pdf_log10(data[set_name], bins=edges)
            else:
                density, _ = np.histogram(v, bins=edges, density=True)
            label, colour = _set_style(set_name, position)
            in_range = int(((v >= edges[0]) & (v <= edges[-1])).sum())
            ax.stairs(density, edges, color=colour, linestyle="--" if set_name == SPLIT_TEST else "-",
                      label=f"{label} ({len(data[set_name])} maps)", lw=1.2 if set_name == SPLIT_FEWSHOT else 1.0)
            rows += [{"set": set_name, "left": edges[b], "right": edges[b + 1], "density": density[b],
                      "n_values": v.size, "n_in_range": in_range} for b in range(bins)]
        ax.set_yscale("log")
        positive = [r["density"] for r in rows if r["density"] > 0]
        if positive:
            ax.set_ylim(min(positive) / 2.0, max(positive) * 3.0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        fig.legend(loc="outside upper center", ncols=2)
        return _save(fig, out_stem, pd.DataFrame(rows))
