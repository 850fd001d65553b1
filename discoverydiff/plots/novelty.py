"""Novelty-fidelity figure: how new the discovered samples are against how close they stay."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd

from ..errors import InputError
from .style import _STYLE, DOUBLE_COLUMN_IN, FigureFiles, _new_figure, _save, _set_style

_REFERENCES = ("fewshot", "base_samples", "baseline_samples")


def plot_novelty_fidelity(sweep_csv, out_stem, kind: str = "field") -> FigureFiles:
    """Near-copy share and novelty W1 against a domain distance, as discovery's knob varies.

    Parameters
    ----------
    sweep_csv : table of :func:`discoverydiff.discovery.sweep.novelty_fidelity_sweep`: one row per knob
        value, and the few-shot maps, base-model and fine-tuned sets as reference points, all measured
        against the validation maps.
    out_stem : str or Path
    kind : ``field`` (x: PDF W1 of log10 values, dex) or ``galaxy`` (x: median W1 of the statmorph
        parameters).

    Returns
    -------
    FigureFiles
        Sidecar: ``set`` (``sweep`` or a reference set), ``value`` (the knob's value), ``fidelity``,
        ``near_copy_share``, ``novelty_w1``.
    """
    sweep = pd.read_csv(sweep_csv)
    if sweep.empty or "fidelity" not in sweep or "set" not in sweep or not (sweep["set"] == "sweep").any():
        raise InputError(sweep_csv, "has no sweep rows")
    done = sweep[sweep["error"].isna() | sweep["error"].astype(str).eq("")]  # no error: read back as NaN
    xlabel = "PDF W1 of log$_{10}$ values to the validation maps [dex]" if kind == "field" else \
        "median W1 of statmorph parameters to the validation maps"
    columns = ["set", "value", "fidelity", "near_copy_share", "novelty_w1"]
    table = done[done["set"].isin(["sweep", *_REFERENCES])][columns].reset_index(drop=True)
    knob = str(sweep["knob"].iloc[0])
    with mpl.rc_context(_STYLE):
        fig = _new_figure(DOUBLE_COLUMN_IN, 2.6)
        axes = fig.subplots(1, 2)
        for ax, column, label in ((axes[0], "near_copy_share", "near-copy share (d$_1$/d$_2$ < 1/3)"),
                                  (axes[1], "novelty_w1", "W1 of d$_1$/d$_2$ to the validation maps'")):
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
                marker = "*" if name == "fewshot" else "s"
                ax.plot(ref["fidelity"], ref[column], marker, color=colour, ms=6 if marker == "*" else 4,
                        label=text, ls="none")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(label)
            ax.set_xscale("log")
        if table["near_copy_share"].notna().any():
            axes[0].set_ylim(-0.03, max(1.0 / 3.0, float(np.nanmax(table["near_copy_share"])) + 0.05))
        axes[0].axhline(1.0 / 16.0, color="0.5", lw=0.6, ls=":")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=3)
        return _save(fig, out_stem, table)
