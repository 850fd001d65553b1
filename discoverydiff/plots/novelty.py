"""Novelty-fidelity figure: how new the discovered samples are against how close they stay."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd

from ..errors import InputError
from .style import _STYLE, DOUBLE_COLUMN_IN, FigureFiles, _new_figure, _save, _set_style

_REFERENCES = ("heldout", "base_samples", "baseline_samples", "discovered")


def plot_novelty_fidelity(sweep_csv, comparison_csv, out_stem, kind: str = "field") -> FigureFiles:
    """Near-copy share and novelty W1 against a domain distance, as discovery's knob varies.

    Parameters
    ----------
    sweep_csv : table of :func:`discoverydiff.discovery.sweep.novelty_fidelity_sweep` (one row per knob value).
    comparison_csv : the dataset's ``comparison.csv``: the held-out targets (what real new members
        score), the base-model and fine-tuned sets and the run's discovered set as reference points.
    out_stem : str or Path
    kind : ``field`` (x: PDF W1 of log10 values, dex) or ``galaxy`` (x: median W1 of the statmorph
        parameters).

    Returns
    -------
    FigureFiles
        Sidecar: ``set`` (``sweep`` or a reference set), ``value`` (the knob's value), ``fidelity``,
        ``near_copy_share``, ``novelty_w1``.
    """
    from ..discovery.sweep import fidelity_distance

    sweep = pd.read_csv(sweep_csv)
    comparison = pd.read_csv(comparison_csv)
    if sweep.empty or "fidelity" not in sweep:
        raise InputError(sweep_csv, "has no sweep rows")
    done = sweep[sweep["error"].isna() | sweep["error"].astype(str).eq("")]  # no error: read back as NaN
    fidelity = fidelity_distance(comparison, kind)
    by_set = comparison.pivot_table(index="set", columns="statistic", values="value")
    xlabel = "PDF W1 of log$_{10}$ values to the targets [dex]" if kind == "field" else \
        "median W1 of statmorph parameters to the targets"
    rows = [{"set": "sweep", "value": r["value"], "fidelity": r["fidelity"], "near_copy_share": r["near_copy_share"],
             "novelty_w1": r["novelty_w1"]} for _, r in done.iterrows()]
    for name in _REFERENCES:
        if name in by_set.index and name in fidelity:
            rows.append({"set": name, "value": np.nan, "fidelity": fidelity[name],
                         "near_copy_share": by_set.loc[name].get("near_copy_share", np.nan),
                         "novelty_w1": by_set.loc[name].get("novelty_w1", np.nan)})
    table = pd.DataFrame(rows)
    knob = str(sweep["knob"].iloc[0])
    with mpl.rc_context(_STYLE):
        fig = _new_figure(DOUBLE_COLUMN_IN, 2.6)
        axes = fig.subplots(1, 2)
        for ax, column, label in ((axes[0], "near_copy_share", "near-copy share (d$_1$/d$_2$ < 1/3)"),
                                  (axes[1], "novelty_w1", "W1 of d$_1$/d$_2$ to the held-out targets'")):
            part = table[table["set"] == "sweep"].sort_values("value")
            ax.plot(part["fidelity"], part[column], "o-", color="#D55E00", lw=1.0, ms=3.5,
                    label=f"discovery, {knob} varied")
            for _, r in part.iterrows():
                ax.annotate(f"{r['value']:g}", (r["fidelity"], r[column]), textcoords="offset points",
                            xytext=(3, 3), fontsize=6)
            for position, name in enumerate(_REFERENCES):
                ref = table[table["set"] == name]
                if ref.empty:
                    continue
                text, colour = _set_style(name, position)
                marker = "*" if name == "discovered" else "s"
                ax.plot(ref["fidelity"], ref[column], marker, color=colour, ms=6 if marker == "*" else 4,
                        label=f"{text} (this run)" if name == "discovered" else text, ls="none")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(label)
            ax.set_xscale("log")
        if table["near_copy_share"].notna().any():
            axes[0].set_ylim(-0.03, max(1.0 / 3.0, float(np.nanmax(table["near_copy_share"])) + 0.05))
        axes[0].axhline(1.0 / 16.0, color="0.5", lw=0.6, ls=":")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=3)
        return _save(fig, out_stem, table)
