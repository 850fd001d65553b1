"""Memorization figure: nearest-neighbour ratios d1/d2 of every set against the few-shot targets."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import matplotlib as mpl
import numpy as np
import pandas as pd

from ..errors import InputError
from ..store import SPLIT_FEWSHOT, SPLIT_TEST
from .style import (
    _STYLE,
    SINGLE_COLUMN_IN,
    FigureFiles,
    _new_figure,
    _physical,
    _read_record,
    _real_sets,
    _resolve_kind,
    _save,
    _set_style,
)


def plot_memorization(tensors_h5, sets: Mapping[str, object], out_stem, threshold: float = 1.0 / 3.0,
                      kind: str | None = None, features: Callable | None = None, include_test: bool = True,
                      bins: int = 20) -> FigureFiles:
    """Nearest-neighbour ratio d1/d2 of every set against the few-shot targets.

    For each sample, d1 and d2 are the distances to its nearest and second-nearest few-shot
    target (:func:`discoverydiff.stats.nearest_neighbour_ratios`); a ratio below
    ``threshold`` marks a near-copy (Lowe's ratio test), and the share of them is the
    near-copy share (:func:`discoverydiff.stats.near_copy_share`). Features are those
    of the statistics: log10 of the physical values for fields, the physical values for
    galaxies, or ``features``.

    Parameters
    ----------
    tensors_h5 : str or Path
    sets : dict of str -> path
    out_stem : str or Path
    threshold : float
    kind : {"field", "galaxy"}, optional
    features : callable, optional
        (n, C, H, W) physical -> (n, D) features.
    include_test : bool
        Add the test maps: real unseen images that are not copies, the reference level.
    bins : int
        Bins over [0, 1].

    Returns
    -------
    FigureFiles
        Sidecar: ``set``, ``left``, ``right``, ``count``, ``n``, ``score``, ``threshold``.
    """
    from ..stats import near_copy_share, nearest_neighbour_ratios

    record = _read_record(tensors_h5)
    kind = _resolve_kind(kind, record)
    real = _real_sets(tensors_h5, record, include_test)
    references = real[SPLIT_FEWSHOT].physical
    if references.shape[0] < 2:
        raise InputError(tensors_h5, "needs at least 2 few-shot targets for nearest-neighbour ratios")
    data = {k: v.physical for k, v in real.items() if k != SPLIT_FEWSHOT}
    for name, path in sets.items():
        data[name] = _physical(path, record, tensors_h5).physical
    if features is None and kind == "field":
        features = lambda x: np.log10(np.asarray(x, dtype=np.float64)).reshape(len(x), -1)  # noqa: E731
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    with mpl.rc_context(_STYLE):
        fig = _new_figure(SINGLE_COLUMN_IN, 2.5 + 0.13 * (len(data) + 1))
        ax = fig.subplots()
        ax.axvspan(0.0, threshold, color="0.9", lw=0, zorder=0)
        ax.axvline(threshold, color="black", lw=0.8, ls="--",
                   label=f"near-copy threshold d$_1$/d$_2$ = {threshold:.2f}")
        for position, (name, values) in enumerate(data.items()):
            ratios = nearest_neighbour_ratios(values, references, features)["ratio"].to_numpy()
            score = near_copy_share(ratios, threshold)
            label, colour = _set_style(name, position + 1)
            counts, _ = np.histogram(np.clip(ratios, 0.0, 1.0), bins=edges)
            ax.stairs(counts / max(len(ratios), 1), edges, color=colour, lw=1.0,
                      linestyle="--" if name == SPLIT_TEST else "-",
                      label=f"{label} ({len(ratios)}): near-copy share {score:.2f}")
            rows += [{"set": name, "left": edges[b], "right": edges[b + 1], "count": int(counts[b]),
                      "n": len(ratios), "score": score, "threshold": threshold} for b in range(bins)]
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, None)
        ax.margins(y=0.05)
        ax.set_xlabel("d$_1$ / d$_2$ (nearest / second-nearest few-shot target)")
        ax.set_ylabel("fraction of samples per bin")
        fig.legend(loc="outside upper center", ncols=1)
        return _save(fig, out_stem, pd.DataFrame(rows))
