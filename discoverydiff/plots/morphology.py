"""Galaxy figure: Gini-M20 and concentration-asymmetry planes of every set (statmorph)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
import pandas as pd

from ..store import SPLIT_FEWSHOT, SPLIT_TEST
from .style import (
    _STYLE,
    DOUBLE_COLUMN_IN,
    FigureFiles,
    _new_figure,
    _save,
    _set_style,
)


def _frame(values: pd.Series, reference: pd.Series, pad: float = 0.15) -> tuple[float, float]:
    """Axis limits that hold every reference value and the central 90% of all values, padded."""
    values = values.to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    reference = reference.to_numpy(dtype=float)
    points = np.concatenate([reference[np.isfinite(reference)],
                             np.percentile(values, [5, 95]) if values.size else []])
    if points.size == 0:
        return 0.0, 1.0
    lo, hi = float(points.min()), float(points.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    return lo - pad * span, hi + pad * span


def plot_morphology(tables: Mapping[str, object], out_stem) -> FigureFiles:
    """Gini-M20 and concentration-asymmetry planes of every set (statmorph).

    Draws the tables of rule ``morphology`` (:func:`discoverydiff.stats.morphology_of_set`:
    statmorph on the mean of the channels in physical units), so that the figure shows
    exactly what ``comparison.csv`` measured; nothing is measured here. Failed fits are left
    out and counted in the legend. The axes frame the real targets and the central 90% of all
    values; values beyond (degenerate fits of noise-like samples) are drawn as crosses at the
    edge. Guides: the Lotz et al. (2008, ApJ 672, 177) lines
    G = -0.14 M20 + 0.33 (mergers above) and G = 0.14 M20 + 0.80 (E/S0/Sa above, Sb-Irr
    below), and Conselice's (2003, ApJS 147, 1) A = 0.35 (mergers right of it). They were
    calibrated on well-resolved SDSS galaxies; on small cutouts they are indicative only.

    Parameters
    ----------
    tables : dict of str -> path or DataFrame
        Set name -> its morphology table (``morphology/{set}.csv``), in legend order; the
        real sets are ``fewshot``, ``validation`` and ``test``.
    out_stem : str or Path

    Returns
    -------
    FigureFiles
        Sidecar: one row per image, ``set``, ``name``, ``gini``, ``m20``, ``concentration``,
        ``asymmetry``, ``failed``, ``error``.
    """
    from ..stats import read_morphology_table

    parts = []
    for name, source in tables.items():
        part = source.copy() if isinstance(source, pd.DataFrame) else read_morphology_table(source)
        part["set"] = name
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    data = dict(tables)
    ok = table[~table["failed"]]
    real = ok[ok["set"].isin([SPLIT_FEWSHOT, SPLIT_TEST])]
    frames = {column: _frame(ok[column], real[column]) for column in ("m20", "gini", "asymmetry", "concentration")}
    with mpl.rc_context(_STYLE):
        fig = _new_figure(DOUBLE_COLUMN_IN, 3.0)
        gm, ca = fig.subplots(1, 2)
        for position, name in enumerate(data):
            label, colour = _set_style(name, position)
            part = ok[ok["set"] == name]
            n_all = int((table["set"] == name).sum())
            n_failed = n_all - len(part)
            text = f"{label} ({n_all}" + (f", {n_failed} failed)" if n_failed else ")")
            marker = "*" if name == SPLIT_FEWSHOT else ("s" if name == SPLIT_TEST else "o")
            kwargs = {"color": colour, "marker": marker, "s": 18 if marker == "*" else 9, "lw": 0,
                      "alpha": 0.85, "zorder": 3 if name in (SPLIT_FEWSHOT, SPLIT_TEST) else 2}
            for ax, (xcol, ycol) in ((gm, ("m20", "gini")), (ca, ("asymmetry", "concentration"))):
                x, y = part[xcol].to_numpy(dtype=float), part[ycol].to_numpy(dtype=float)
                (xlo, xhi), (ylo, yhi) = frames[xcol], frames[ycol]
                out = (x < xlo) | (x > xhi) | (y < ylo) | (y > yhi)
                ax.scatter(x[~out], y[~out], label=text if ax is gm else None, **kwargs)
                # off-scale values (degenerate fits of noise images) at the frame's edge, as crosses
                ax.scatter(np.clip(x[out], xlo, xhi), np.clip(y[out], ylo, yhi), **dict(kwargs, marker="x", s=14,
                                                                                       lw=0.8))
        gm.set_xlim(frames["m20"][1], frames["m20"][0])  # M20 decreases to the right, as in Lotz et al.
        gm.set_ylim(*frames["gini"])
        ca.set_xlim(*frames["asymmetry"])
        ca.set_ylim(*frames["concentration"])
        m20 = np.linspace(*frames["m20"], 50)
        gm.plot(m20, -0.14 * m20 + 0.33, color="0.4", lw=0.6, ls="--", zorder=1)
        gm.plot(m20, 0.14 * m20 + 0.80, color="0.4", lw=0.6, ls=":", zorder=1)
        ca.axvline(0.35, color="0.4", lw=0.6, ls="--", zorder=1)
        gm.set_xlabel("M$_{20}$")
        gm.set_ylabel("Gini G")
        ca.set_xlabel("asymmetry A")
        ca.set_ylabel("concentration C")
        gm.set_title("dashed: merger line\ndotted: E/S0/Sa | Sb-Irr (Lotz+ 2008)", fontsize=7)
        ca.set_title("dashed: A = 0.35 (Conselice 2003)\nx: off-scale, drawn at the edge", fontsize=7)
        fig.legend(loc="outside right upper", title="set (images, failed fits)", title_fontsize=7)
        columns = ["set", "name", "gini", "m20", "concentration", "asymmetry", "failed", "error"]
        return _save(fig, out_stem, table[columns])
