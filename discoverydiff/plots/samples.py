"""Figure 3: grids of the few-shot targets and every sample set, in physical units."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
import pandas as pd

from ..store import SPLIT_FEWSHOT
from .style import (
    _STYLE,
    DOUBLE_COLUMN_IN,
    SINGLE_COLUMN_IN,
    FigureFiles,
    _field_norm,
    _galaxy_value_label,
    _image_axis,
    _new_figure,
    _physical,
    _read_record,
    _real_sets,
    _resolve_kind,
    _save,
    _set_style,
    quantity_label,
)


def plot_sample_grids(tensors_h5, sets: Mapping[str, object], out_stem, kind: str | None = None, n: int = 8,
                      channel: int = 0) -> FigureFiles:
    """Real few-shot targets and every sample set side by side, in physical units.

    Rows: the few-shot targets, then one row per set in the order given (usually
    ``samples`` (discovered), ``base_samples``, ``baseline_samples``). Every set is mapped
    through the dataset's normalization record, as for the statistics, so that the base
    model's samples (which belong to no dataset) share the targets' scale. Fields share
    one colour scale, the record's range (logarithmic for log10 records), labelled with the
    unit; galaxies are 8-bit RGB (:func:`discoverydiff.physical.to_rgb_uint8`).

    Parameters
    ----------
    tensors_h5 : str or Path
        The dataset's ``tensors.h5``.
    sets : dict of str -> path
        Set name -> tensor file.
    out_stem : str or Path
    kind : {"field", "galaxy"}, optional
        Default from the record.
    n : int
        Columns: the first ``n`` images of every row.
    channel : int
        Fields: the source channel shown.

    Returns
    -------
    FigureFiles
        Sidecar: one row per tile, ``set``, ``column``, ``name``, ``min``, ``max``, ``mean``
        of the physical values shown (galaxies: of all channels), ``rgb_mean`` (galaxies:
        of the 8-bit image drawn), ``saturated_fraction`` (share of pixels at the limits of
        the record's range, where a sample that overshot [-1, 1] was clipped), ``vmin``,
        ``vmax``, ``units``.
    """

    record = _read_record(tensors_h5)
    kind = _resolve_kind(kind, record)
    rows_data = {SPLIT_FEWSHOT: _real_sets(tensors_h5, record, include_test=False)[SPLIT_FEWSHOT]}
    for name, path in sets.items():
        rows_data[name] = _physical(path, record, tensors_h5)
    return draw_grid(rows_data, record, kind, out_stem, n, channel)


def draw_grid(rows_data: Mapping[str, tuple], record, kind: str, out_stem, n: int = 8, channel: int = 0,
              tile_values: Mapping[str, object] | None = None) -> FigureFiles:
    """One row of tiles per set: ``rows_data`` maps a set to (physical maps, names, saturated share).

    ``tile_values`` (set -> one number per tile, optional) are printed above the tiles and kept
    in the sidecar as ``value``.
    """
    from ..physical import to_rgb_uint8

    tile_values = dict(tile_values or {})
    n_cols = max(1, min(int(n), max(len(v[1]) for v in rows_data.values())))
    n_rows = len(rows_data)
    width = DOUBLE_COLUMN_IN if n_cols > 4 else SINGLE_COLUMN_IN
    panel = (width - (1.1 if kind == "field" else 0.5)) / n_cols
    records = []
    with mpl.rc_context(_STYLE):
        fig = _new_figure(width, n_rows * panel + 0.15)
        axes = fig.subplots(n_rows, n_cols, squeeze=False)
        norm = _field_norm(record, channel) if kind == "field" else None
        units = record.units[channel] if kind == "field" else _galaxy_value_label(record)
        image = None
        for r, (name, (phys, names, saturated)) in enumerate(rows_data.items()):
            label, colour = _set_style(name, r)
            axes[r, 0].set_ylabel(label.replace(" ", "\n", 1) if len(label) > 12 else label, color=colour)
            rgb = to_rgb_uint8(phys[:n_cols], record) if kind == "galaxy" else None
            for j in range(n_cols):
                ax = axes[r, j]
                _image_axis(ax)
                if j >= len(names):
                    ax.set_facecolor("none")
                    continue
                if kind == "field":
                    shown = phys[j, channel]
                    image = ax.imshow(shown, norm=norm, origin="lower")
                    vmin, vmax, rgb_mean = float(norm.vmin), float(norm.vmax), np.nan
                else:
                    shown = phys[j]
                    ax.imshow(rgb[j], origin="upper")
                    vmin, vmax, rgb_mean = 0.0, 255.0, float(rgb[j].mean())
                value = float(tile_values[name][j]) if name in tile_values else np.nan
                if np.isfinite(value):
                    ax.set_title(f"{value:.2f}", fontsize=6, pad=1.5)
                records.append({"set": name, "column": j, "name": names[j], "min": float(shown.min()),
                                "max": float(shown.max()), "mean": float(shown.mean()), "rgb_mean": rgb_mean,
                                "saturated_fraction": float(saturated[j]), "vmin": vmin, "vmax": vmax,
                                "units": units, **({"value": value} if tile_values else {})})
        if kind == "field" and image is not None:
            fig.colorbar(image, ax=axes.ravel().tolist(), label=quantity_label(record, channel), fraction=0.04,
                         pad=0.02, aspect=max(10, 8 * n_rows))
        return _save(fig, out_stem, pd.DataFrame(records))
