"""Figure 1: reconstruction of unseen images (inputs, DDIM reconstructions, residuals)."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd

from ..errors import InputError
from ..store import read_tensor_file
from .style import (
    _RESIDUAL_CMAP,
    _STYLE,
    DOUBLE_COLUMN_IN,
    SINGLE_COLUMN_IN,
    FigureFiles,
    _field_norm,
    _image_axis,
    _new_figure,
    _quantity,
    _read_record,
    _resolve_kind,
    _save,
    _with_unit,
    quantity_label,
)


def plot_reconstruction(tensors_h5, reconstruction_h5, reconstruction_csv, out_stem, n: int = 6,
                        residual: str = "physical", kind: str | None = None, channel: int = 0) -> FigureFiles:
    """Inputs, their DDIM reconstructions and the residuals, with each column's PSNR.

    Parameters
    ----------
    tensors_h5 : str or Path
        The dataset's ``tensors.h5`` (the inputs and the normalization record).
    reconstruction_h5 : str or Path
        ``reconstruction.h5``: inverted-then-regenerated images; rows are matched to the
        inputs by name.
    reconstruction_csv : str or Path
        ``reconstruction.csv`` (``name``, ``mse_normalized``, ``psnr_db``, ...); the PSNR over
        each column is read from it, not recomputed.
    out_stem : str or Path
        Output stem; ``.pdf``, ``.png`` and ``.csv`` are appended.
    n : int
        Columns: the first ``n`` reconstructed images.
    residual : {"physical", "normalized"}
        ``physical``: log10(reconstruction / input) in dex for log10 records, otherwise the
        difference in the record's unit (galaxies: the mean over R, G, B on the 0-255
        scale); ``normalized``: the difference in the model's [-1, 1] units (channel mean).
    kind : {"field", "galaxy"}, optional
        Default from the record (replicated or log10 channels are fields).
    channel : int
        Fields: the source channel shown.

    Returns
    -------
    FigureFiles
        The sidecar has one row per column: ``column``, ``name``, ``psnr_db`` and
        ``mse_normalized`` (copied from the CSV), ``residual_rms`` and ``residual_limit``
        (the colour-bar half-range) in ``residual_units``, ``vmin``, ``vmax`` (the image
        colour scale, physical units; 0-255 for RGB).
    """
    if residual not in ("physical", "normalized"):
        raise ValueError(f"residual must be 'physical' or 'normalized', got {residual!r}")
    record = _read_record(tensors_h5)
    kind = _resolve_kind(kind, record)
    images = read_tensor_file(tensors_h5)
    rec = read_tensor_file(reconstruction_h5)
    table = pd.read_csv(reconstruction_csv)
    for column in ("name", "psnr_db", "mse_normalized"):
        if column not in table:
            raise InputError(reconstruction_csv, f"has no column {column!r} (columns: {list(table.columns)})")
    if rec.x.shape[1:] != images.x.shape[1:]:
        raise InputError(reconstruction_h5, f"holds {rec.x.shape[1:]} images, {tensors_h5} {images.x.shape[1:]}")
    row_of = {}
    for i, name in enumerate(images.names):
        row_of.setdefault(name, i)
    metrics = table.drop_duplicates("name").set_index("name")
    m = min(int(n), len(rec.names))
    if m < 1:
        raise InputError(reconstruction_h5, "holds no reconstructed images")
    names = rec.names[:m]
    for name in names:
        if name not in row_of:
            raise InputError(reconstruction_h5, f"row {name!r} is not an image of {tensors_h5}")
        if name not in metrics.index:
            raise InputError(reconstruction_csv, f"has no row for image {name!r}")
    real_x = images.x[[row_of[name] for name in names]].astype(np.float64)
    rec_x = rec.x[:m].astype(np.float64)
    real_p, rec_p = record.to_physical(real_x), record.to_physical(rec_x)
    symbol = _quantity(record, channel)[0] if kind == "field" else "value"
    if residual == "normalized":
        res = (np.clip(rec_x, -1, 1) - real_x).mean(axis=1)
        res_units, res_label = "normalized units", "$\\Delta$ normalized value"
    elif record.transform == "log10":
        res = np.log10(rec_p[:, channel]) - np.log10(real_p[:, channel])
        res_units, res_label = "dex", f"$\\Delta$log$_{{10}}$ {symbol} [dex]"
    elif kind == "galaxy":
        res = (rec_p - real_p).mean(axis=1)
        res_units = record.units[0] or ("0-255" if record.transform == "linear" else "")
        res_label = _with_unit("mean $\\Delta$ RGB", res_units)
    else:
        res = rec_p[:, channel] - real_p[:, channel]
        res_units = record.units[channel]
        res_label = _with_unit(f"$\\Delta$ {symbol}", res_units)
    limit = float(np.percentile(np.abs(res), 99)) or float(np.max(np.abs(res))) or 1e-12

    width = DOUBLE_COLUMN_IN if m > 3 else SINGLE_COLUMN_IN
    panel = (width - 0.9) / m
    psnr = metrics.loc[names, "psnr_db"].to_numpy(dtype=np.float64)
    with mpl.rc_context(_STYLE):
        fig = _new_figure(width, 3 * panel + 0.55)
        axes = fig.subplots(3, m, squeeze=False)
        if kind == "field":
            norm = _field_norm(record, channel)
            vmin, vmax = float(norm.vmin), float(norm.vmax)
            for j in range(m):
                top = axes[0, j].imshow(real_p[j, channel], norm=norm, origin="lower")
                axes[1, j].imshow(rec_p[j, channel], norm=norm, origin="lower")
            fig.colorbar(top, ax=axes[:2, :].ravel().tolist(), label=quantity_label(record, channel),
                         fraction=0.05, pad=0.02, aspect=25)
        else:
            from ..physical import to_rgb_uint8

            vmin, vmax = 0.0, 255.0
            real_rgb, rec_rgb = to_rgb_uint8(real_p, record), to_rgb_uint8(rec_p, record)
            for j in range(m):
                axes[0, j].imshow(real_rgb[j], origin="upper")
                axes[1, j].imshow(rec_rgb[j], origin="upper")
        origin = "lower" if kind == "field" else "upper"
        for j in range(m):
            bottom = axes[2, j].imshow(res[j], cmap=_RESIDUAL_CMAP, vmin=-limit, vmax=limit, origin=origin)
            axes[0, j].set_title(f"{psnr[j]:.1f} dB", pad=2)
        fig.colorbar(bottom, ax=axes[2, :].ravel().tolist(), label=res_label, fraction=0.05, pad=0.02,
                     aspect=12, extend="both")
        for ax in axes.ravel():
            _image_axis(ax)
        for r, text in enumerate(("input", "reconstruction", "residual")):
            axes[r, 0].set_ylabel(text)
        fig.suptitle(f"DDIM reconstruction, PSNR per column (mean of all {len(table)}: "
                     f"{table['psnr_db'].mean():.1f} dB)", fontsize=7)
        data = pd.DataFrame({
            "column": np.arange(m), "name": names, "psnr_db": psnr,
            "mse_normalized": metrics.loc[names, "mse_normalized"].to_numpy(dtype=np.float64),
            "residual_rms": np.sqrt((res**2).reshape(m, -1).mean(axis=1)), "residual_limit": limit,
            "residual_units": res_units, "vmin": vmin, "vmax": vmax,
        })
        return _save(fig, out_stem, data)
