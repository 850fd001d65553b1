"""Jacobian figure: the numerical rank of the denoiser's Jacobian against the noise level."""

from __future__ import annotations

import matplotlib as mpl
import pandas as pd

from ..errors import InputError
from .style import _STYLE, DOUBLE_COLUMN_IN, FigureFiles, _new_figure, _save

_SET_LOOK = {"fewshot": ("few-shot targets", "#D55E00", "o"), "in_domain": ("in-domain (base samples)", "#0072B2", "s")}


def plot_jacobian_rank(jacobian_csv, out_stem) -> FigureFiles:
    """Median numerical rank (and its range over the points), and the share of the squared spectrum
    in the top k, against the timestep, per set.

    Parameters
    ----------
    jacobian_csv : ``results/{dataset}/jacobian.csv`` of rule ``jacobian``.
    out_stem : str or Path

    Returns
    -------
    FigureFiles
        Sidecar: ``set``, ``t``, ``median_rank``, ``min_rank``, ``max_rank``, ``points``,
        ``saturated`` (points whose top k did not reach the energy: their rank is a lower bound), ``k``,
        ``median_captured`` (the share of the whole squared spectrum in the top k).
    """
    table = pd.read_csv(jacobian_csv)
    missing = {"set", "t", "rank", "saturated"} - set(table.columns)
    if table.empty or missing:
        raise InputError(jacobian_csv, f"has no Jacobian rows (missing columns {sorted(missing)})" if missing
                         else "has no Jacobian rows")
    k = sum(c.startswith("s_") for c in table.columns)
    summary = (table.groupby(["set", "t"])
               .agg(median_rank=("rank", "median"), min_rank=("rank", "min"), max_rank=("rank", "max"),
                    points=("rank", "size"), saturated=("saturated", "sum"))
               .reset_index().assign(k=k))
    summary = summary.merge(table.groupby(["set", "t"])["captured"].median().rename("median_captured").reset_index(),
                            on=["set", "t"])
    with mpl.rc_context(_STYLE):
        fig = _new_figure(DOUBLE_COLUMN_IN, 2.4)
        rank_ax, share_ax = fig.subplots(1, 2)
        for offset, (name, part) in enumerate(summary.groupby("set", sort=False)):
            label, colour, marker = _SET_LOOK.get(name, (name, "0.3", "^"))
            shift = (offset - 0.5) * 8.0  # side by side at each t
            rank_ax.errorbar(part["t"] + shift, part["median_rank"],
                             yerr=[part["median_rank"] - part["min_rank"], part["max_rank"] - part["median_rank"]],
                             fmt=f"{marker}-", color=colour, ms=3.5, lw=1.0, capsize=2, label=label)
            full = part[part["saturated"] > 0]
            rank_ax.plot(full["t"] + shift, full["max_rank"], marker, mfc="white", color=colour, ms=6, ls="none")
            share_ax.plot(part["t"], part["median_captured"], f"{marker}-", color=colour, ms=3.5, lw=1.0, label=label)
        rank_ax.axhline(k, color="0.5", lw=0.6, ls=":")
        rank_ax.set_ylim(0, 1.12 * max(k, float(summary["max_rank"].max())))
        rank_ax.annotate(f"open markers: rank above k = {k}", (0.02, 0.97), xycoords="axes fraction", va="top",
                         fontsize=6)
        rank_ax.set_xlabel("timestep t")
        rank_ax.set_ylabel("numerical rank of dx$_0$/dx$_t$")
        share_ax.set_xlabel("timestep t")
        share_ax.set_ylabel(f"share of the squared spectrum in the top {k}")
        share_ax.set_ylim(0, 1.05)
        share_ax.legend(loc="lower right", fontsize=6)
        return _save(fig, out_stem, summary)
