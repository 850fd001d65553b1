"""Paper figures of one dataset's results, each with the numbers it shows.

Every figure function reads result files of the workflow (tensor files, CSV tables) and
writes three files sharing one stem: ``<stem>.pdf`` (vector, for a paper), ``<stem>.png``
(300 dpi, for the Snakemake report) and ``<stem>.csv``, the numbers actually drawn, so that
a figure can be traced back to, and tested against, the run that made it. Each returns a
:class:`FigureFiles` (pdf, png, data).

Conventions
-----------
- Images are shown in physical units, through the dataset's normalization record (the
  ``normalization`` attribute of ``tensors.h5``): fields on a logarithmic colour scale
  spanning the record's range (for log10 records ``10**lo`` to ``10**hi``), shared by every
  panel, with the unit on the colour bar (``G0 [Habing]``); galaxies as 8-bit RGB
  (:func:`discoverydiff.physical.to_rgb_uint8`). Fields are drawn with ``origin="lower"``
  (FITS), galaxies with ``origin="upper"`` (image files).
- Colour maps are perceptually uniform (viridis for maps); signed residuals use
  ``coolwarm`` (Moreland 2009), a diverging map with a light, neutral zero.
- Sets have one colour and name in every figure (Okabe & Ito colour-blind-safe palette):
  few-shot targets black, held-out targets grey, discovered vermillion, base model blue,
  fine-tuned baseline green.
- Sizes are journal columns (3.4 in single, 7 in double), fonts 7-8 pt; figures use
  constrained layout and a local ``rcParams`` context, never the global state, and
  matplotlib's object-oriented API without pyplot (no backend is switched).
- Output is reproducible: no creation date in the PDF, no software tag in the PNG; each
  file appears under its final name only once it is complete.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import matplotlib as mpl
import matplotlib.ticker  # noqa: F401  (mpl.ticker)
import numpy as np
import pandas as pd
from matplotlib.colors import AsinhNorm, LogNorm, Normalize
from matplotlib.figure import Figure

from .errors import InputError
from .normalize import NormalizationRecord
from .store import SPLIT_FEWSHOT, SPLIT_HELDOUT, read_attrs, read_tensor_file

log = logging.getLogger(__name__)

KINDS = ("field", "galaxy")
SINGLE_COLUMN_IN = 3.4
DOUBLE_COLUMN_IN = 7.0
PNG_DPI = 300

_STYLE = {
    "font.size": 7, "axes.labelsize": 7, "axes.titlesize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 7, "figure.titlesize": 8, "font.family": "sans-serif", "mathtext.default": "regular",
    "axes.linewidth": 0.6, "xtick.major.width": 0.6, "ytick.major.width": 0.6, "xtick.minor.width": 0.4,
    "ytick.minor.width": 0.4, "xtick.major.size": 2.5, "ytick.major.size": 2.5, "xtick.minor.size": 1.5,
    "ytick.minor.size": 1.5, "lines.linewidth": 1.0, "patch.linewidth": 0.8, "legend.frameon": False,
    "legend.handlelength": 1.6, "image.cmap": "viridis", "image.interpolation": "nearest",
    "figure.constrained_layout.h_pad": 0.02, "figure.constrained_layout.w_pad": 0.02,
    "pdf.fonttype": 42, "svg.hashsalt": "discoverydiff", "figure.dpi": 100, "savefig.dpi": PNG_DPI,
}
_PDF_METADATA = {"CreationDate": None, "ModDate": None}
_PNG_METADATA = {"Software": None}
_RESIDUAL_CMAP = "coolwarm"

# (label, colour) of every set name the workflow uses; Okabe & Ito (2008) palette.
_SETS = {
    "fewshot": ("few-shot targets", "black"),
    "heldout": ("held-out targets", "0.55"),
    "samples": ("discovered", "#D55E00"),
    "base_samples": ("base model", "#0072B2"),
    "baseline_samples": ("fine-tuned baseline", "#009E73"),
    "target": ("target latents", "black"),
    "id": ("ID latents (base model)", "#0072B2"),
    "discovered": ("discovered latents", "#D55E00"),
}
_EXTRA_COLOURS = ("#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
_GENERIC_CHANNEL_NAMES = {"", "field", "value"}


class FigureFiles(NamedTuple):
    """The three files of one figure."""

    pdf: Path
    png: Path
    data: Path


# --------------------------------------------------------------------------------------
# Helpers: records, labels, saving
# --------------------------------------------------------------------------------------


def _set_style(name: str, position: int = 0) -> tuple[str, str]:
    return _SETS.get(name, (name, _EXTRA_COLOURS[position % len(_EXTRA_COLOURS)]))


def _read_record(tensors_h5) -> NormalizationRecord:
    record = read_attrs(tensors_h5).get("normalization")
    if not record:
        raise InputError(tensors_h5, "has no normalization record; figures are drawn in physical units")
    return NormalizationRecord.from_json(record)


def _resolve_kind(kind: str | None, record: NormalizationRecord | None) -> str:
    if kind is None:  # one replicated field, or a log10 one, is a field; colour images are galaxies
        return "field" if record.channel_mode == "replicate" or record.transform == "log10" else "galaxy"
    kind = {"fields": "field", "galaxies": "galaxy"}.get(kind, kind)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


class _Images(NamedTuple):
    physical: np.ndarray  # (N, C_source, H, W) in the record's units
    names: list
    saturated: np.ndarray  # (N,) share of source-channel pixels at the record's range limits


def _saturated_fraction(x: np.ndarray, record: NormalizationRecord) -> np.ndarray:
    """Share of pixels that to_physical clips to the range limits (|y| >= 1), per image."""
    y = np.asarray(x, dtype=np.float64)
    if record.channel_mode == "replicate":
        y = y.mean(axis=1, keepdims=True)
    return (np.abs(y) >= 1.0 - 1e-6).reshape(len(y), -1).mean(axis=1)


def _images(x: np.ndarray, names, record: NormalizationRecord) -> _Images:
    return _Images(record.to_physical(x), list(names), _saturated_fraction(x, record))


def _physical(path, record: NormalizationRecord, tensors_h5) -> _Images:
    """A tensor file mapped through the dataset's record."""
    ts = read_tensor_file(path)
    if ts.x.shape[1] != record.model_channels:
        raise InputError(path, f"has {ts.x.shape[1]} channel(s) but {tensors_h5}'s normalization record maps "
                               f"{record.model_channels}")
    return _images(ts.x, ts.names, record)


def _real_sets(tensors_h5, record, include_heldout: bool) -> dict[str, _Images]:
    images = read_tensor_file(tensors_h5)
    if images.split is None:
        raise InputError(tensors_h5, "has no 'split' dataset; the few-shot targets cannot be told apart")
    out = {}
    for split in (SPLIT_FEWSHOT, SPLIT_HELDOUT) if include_heldout else (SPLIT_FEWSHOT,):
        part = images.subset(split)
        if len(part.names):
            out[split] = _images(part.x, part.names, record)
    if SPLIT_FEWSHOT not in out:
        raise InputError(tensors_h5, "has no few-shot targets")
    return out


def _quantity(record: NormalizationRecord, channel: int = 0) -> tuple[str, str]:
    """(symbol, unit) of a field channel; the demo's unnamed Habing field is G0."""
    name, unit = record.channel_names[channel], record.units[channel]
    if name.lower() in _GENERIC_CHANNEL_NAMES or name == f"c{channel}":
        name = "$G_0$" if unit == "Habing" else "value"
    return name, unit


def _with_unit(text: str, unit: str) -> str:
    return f"{text} [{unit}]" if unit else text


def quantity_label(record: NormalizationRecord, channel: int = 0) -> str:
    """The colour-bar label of a field channel, e.g. ``$G_0$ [Habing]``."""
    return _with_unit(*_quantity(record, channel))


def _galaxy_value_label(record: NormalizationRecord) -> str:
    units = {u for u in record.units}
    if record.transform == "linear" and units == {""} and set(record.lo) == {0.0} and set(record.hi) == {255.0}:
        return "8-bit value [0-255]"
    return _with_unit("flux", units.pop() if len(units) == 1 else "")


def _field_norm(record: NormalizationRecord, channel: int = 0):
    """A colour scale spanning the record's range of one channel, in physical units."""
    lo, hi = record.lo[channel], record.hi[channel]
    if record.transform == "log10":
        return LogNorm(vmin=10.0**lo, vmax=10.0**hi)
    if record.transform == "asinh":
        a = float(record.params["softening"])
        return AsinhNorm(linear_width=a, vmin=a * np.sinh(lo), vmax=a * np.sinh(hi))
    return Normalize(vmin=lo, vmax=hi)


def _log_label(record: NormalizationRecord, channel: int = 0) -> str:
    name, unit = _quantity(record, channel)
    return f"log$_{{10}}$({name} / {unit})" if unit else f"log$_{{10}}$ {name}"


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Figure, out_stem, data: pd.DataFrame) -> FigureFiles:
    """Write ``<stem>.pdf``, ``<stem>.png`` and the data sidecar ``<stem>.csv``."""
    stem = Path(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    files = FigureFiles(Path(f"{stem}.pdf"), Path(f"{stem}.png"), Path(f"{stem}.csv"))
    _atomic(files.pdf, lambda tmp: fig.savefig(tmp, format="pdf", metadata=_PDF_METADATA))
    _atomic(files.png, lambda tmp: fig.savefig(tmp, format="png", dpi=PNG_DPI, metadata=_PNG_METADATA))
    _atomic(files.data, lambda tmp: data.to_csv(tmp, index=False))
    return files


def _image_axis(ax) -> None:
    """An image panel: no ticks, no frame, but room for a row label."""
    ax.set_xticks([])  # no ticks at all (not just hidden ones): constrained layout then skips them
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _fraction_hist(ax, values, edges, colour, label, linestyle="-"):
    """Step histogram of the fraction of values per bin; returns the counts."""
    values = np.asarray(values, dtype=np.float64).ravel()
    counts, _ = np.histogram(values, bins=edges)
    if values.size:
        ax.stairs(counts / values.size, edges, color=colour, label=label, linestyle=linestyle, linewidth=1.0)
    return counts


# --------------------------------------------------------------------------------------
# 1. Reconstruction of unseen images
# --------------------------------------------------------------------------------------


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
            from .physical import to_rgb_uint8

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


# --------------------------------------------------------------------------------------
# 2. Latent geometry and the acceptance windows
# --------------------------------------------------------------------------------------


def _pair_angles_excluding_self(points, refs, exclude_self: bool, max_pairs: int = 2000):
    """Angles (deg) at every point between pairs of refs (not containing the point itself)."""
    import torch

    from .discovery import angles_at_points

    n_ref = refs.shape[0]
    pairs = torch.combinations(torch.arange(n_ref), 2)
    if len(pairs) > max_pairs:  # the same seeded sub-sample as discovery.latent_geometry
        pairs = pairs[torch.randperm(len(pairs), generator=torch.Generator().manual_seed(0))[:max_pairs]]
    if len(pairs) == 0:
        return np.empty(0)
    angles = angles_at_points(torch.from_numpy(points), torch.from_numpy(refs), pairs)
    if not exclude_self:
        return angles.numpy().ravel()
    own = torch.arange(points.shape[0])[:, None]
    keep = (pairs[None, :, 0] != own) & (pairs[None, :, 1] != own)
    return angles[keep].numpy()


def _upper(matrix) -> np.ndarray:
    matrix = np.asarray(matrix)
    return matrix[np.triu_indices(matrix.shape[0], 1)]


def plot_latent_geometry(latents_h5, id_latents_h5, discovered_h5, out_stem, bins: int = 20) -> FigureFiles:
    """Geometry of the target and ID latent clusters, the acceptance windows and the discovered latents.

    Four panels, each a histogram (fraction of values per bin) for the inverted targets,
    the ID latents (inverted base-model samples) and, when present, the discovered latents:

    1. norm |z|;
    2. distance to the ID latents (target-ID and discovered-ID pairs; ID-ID pairs for
       comparison);
    3. angle at the origin between two latents (pairs within the targets, within the ID
       latents, and discovered-target pairs);
    4. angle at a latent between two target latents (targets: pairs of the others, as in
       :func:`discoverydiff.discovery.latent_geometry`; ID latents: pairs of other ID
       latents; discovered: pairs of targets).

    Panels 2-4 carry the acceptance window of the matching criterion (``dist_to_id``,
    ``angle_origin``, ``angle_pairs``; mean +- tolerance x spread measured on the targets,
    from the ``acceptance`` attribute of ``discovered_h5``) as a shaded band, and the
    accepted latents' own criterion values (dataset ``criteria``) as ticks at the top.
    A criterion is a mean over ``n_ref`` references, so its window is narrower than the
    histograms of single distances and angles around it.

    Parameters
    ----------
    latents_h5, id_latents_h5, discovered_h5 : str or Path
        ``latents.h5`` (inverted few-shot targets), ``base_model/id_latents.h5``,
        ``discovered_latents.h5`` (may be None: no discovered latents, no windows).
    out_stem : str or Path
    bins : int
        Bins per panel, shared by the sets.

    Returns
    -------
    FigureFiles
        Sidecar rows (``panel``, ``item``, ``set``, ``left``, ``right``, ``count``, ``value``):
        ``histogram`` rows, one per bin (``count`` values in [left, right)); ``window``
        rows (left, right: the window, value: the targets' mean); ``criterion`` rows (value:
        one accepted latent's criterion).
    """
    from .discovery import CRITERIA, angles_at_origin, pairwise_distances

    target = read_tensor_file(latents_h5).x.astype(np.float64)
    ids = read_tensor_file(id_latents_h5).x.astype(np.float64)
    if target.shape[1:] != ids.shape[1:]:
        raise InputError(id_latents_h5, f"holds latents of shape {ids.shape[1:]}, {latents_h5} {target.shape[1:]}")
    disc, acceptance, criteria = None, None, None
    if discovered_h5 is not None:
        import h5py

        discovered = read_tensor_file(discovered_h5)
        disc = discovered.x.astype(np.float64)
        if disc.shape[1:] != target.shape[1:]:
            raise InputError(discovered_h5, f"holds latents of shape {disc.shape[1:]}, {latents_h5} "
                                            f"{target.shape[1:]}")
        acceptance = discovered.attrs.get("acceptance") or None
        with h5py.File(discovered_h5, "r") as h5:
            if "criteria" in h5:
                criteria = np.asarray(h5["criteria"][()], dtype=np.float64)
    flat = {"target": target.reshape(target.shape[0], -1), "id": ids.reshape(ids.shape[0], -1)}
    if disc is not None:
        flat["discovered"] = disc.reshape(disc.shape[0], -1)
    t, i = flat["target"], flat["id"]
    values = {"norm": {k: np.linalg.norm(v, axis=1) for k, v in flat.items()}}
    values["dist_to_id"] = {"target": pairwise_distances(t, i).numpy().ravel(),
                            "id": _upper(pairwise_distances(i, i).numpy())}
    values["angle_origin"] = {"target": _upper(angles_at_origin(t, t).numpy()),
                              "id": _upper(angles_at_origin(i, i).numpy())}
    values["angle_pairs"] = {"target": _pair_angles_excluding_self(t, t, True),
                             "id": _pair_angles_excluding_self(i, i, True)}
    if disc is not None:
        d = flat["discovered"]
        values["dist_to_id"]["discovered"] = pairwise_distances(d, i).numpy().ravel()
        values["angle_origin"]["discovered"] = angles_at_origin(d, t).numpy().ravel()
        values["angle_pairs"]["discovered"] = _pair_angles_excluding_self(d, t, False)
    panels = {
        "norm": "norm |z| [latent units]",
        "dist_to_id": "distance to ID latents [latent units]",
        "angle_origin": "angle at the origin [deg]",
        "angle_pairs": "angle at a latent between\ntwo reference latents [deg]",
    }
    legend_names = {
        "target": f"targets ({len(t)})", "id": f"ID latents ({len(i)})",
        "discovered": f"discovered ({len(flat['discovered'])})" if disc is not None else "",
    }
    rows = []
    with mpl.rc_context(_STYLE):
        fig = _new_figure(DOUBLE_COLUMN_IN, 2.3)
        axes = fig.subplots(1, 4)
        window_drawn = tick_drawn = False
        for ax, (panel, xlabel) in zip(axes, panels.items()):
            sets = {k: v for k, v in values[panel].items() if v.size}
            window = None
            if acceptance and panel in CRITERIA and panel in acceptance.get("target_mean", {}):
                mean = float(acceptance["target_mean"][panel])
                half = float(acceptance["tolerance"][panel]) * float(acceptance["target_std"][panel])
                window = (mean - half, mean + half, mean)
            crit = criteria[:, CRITERIA.index(panel)] if criteria is not None and panel in CRITERIA else None
            pooled = np.concatenate([v for v in sets.values()] + ([np.asarray(window[:2])] if window else [])
                                    + ([crit] if crit is not None else []))
            lo, hi = float(np.min(pooled)), float(np.max(pooled))
            edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
            if window:
                ax.axvspan(window[0], window[1], color="0.85", lw=0, zorder=0,
                           label=None if window_drawn else "acceptance window")
                ax.axvline(window[2], color="0.5", lw=0.6, ls=":", zorder=0)
                window_drawn = True
                rows.append({"panel": panel, "item": "window", "set": "acceptance", "left": window[0],
                             "right": window[1], "count": np.nan, "value": window[2]})
            for name, v in sets.items():
                label, colour = _set_style(name)
                counts = _fraction_hist(ax, v, edges, colour, legend_names[name] if ax is axes[0] else None)
                rows += [{"panel": panel, "item": "histogram", "set": name, "left": edges[b], "right": edges[b + 1],
                          "count": int(counts[b]), "value": np.nan} for b in range(bins)]
            if crit is not None:
                ax.plot(crit, np.full(crit.shape, 0.97), "|", color=_SETS["discovered"][1], ms=6, mew=1.0,
                        transform=ax.get_xaxis_transform(),
                        label=None if tick_drawn else "criteria of accepted latents")
                tick_drawn = True
                rows += [{"panel": panel, "item": "criterion", "set": "discovered", "left": np.nan,
                          "right": np.nan, "count": np.nan, "value": float(c)} for c in crit]
            ax.set_xlabel(xlabel)
            ax.set_ylim(0, None)
            ax.margins(y=0.12)
        axes[0].set_ylabel("fraction per bin")
        handles, labels = [], []
        for ax in axes:
            h, lab = ax.get_legend_handles_labels()
            handles += h
            labels += lab
        fig.legend(handles, labels, loc="outside upper center", ncols=len(labels))
        return _save(fig, out_stem, pd.DataFrame(rows, columns=["panel", "item", "set", "left", "right", "count",
                                                                "value"]))


# --------------------------------------------------------------------------------------
# 3. Sample grids in physical units
# --------------------------------------------------------------------------------------


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
    from .physical import to_rgb_uint8

    record = _read_record(tensors_h5)
    kind = _resolve_kind(kind, record)
    rows_data = {SPLIT_FEWSHOT: _real_sets(tensors_h5, record, include_heldout=False)[SPLIT_FEWSHOT]}
    for name, path in sets.items():
        rows_data[name] = _physical(path, record, tensors_h5)
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
                records.append({"set": name, "column": j, "name": names[j], "min": float(shown.min()),
                                "max": float(shown.max()), "mean": float(shown.mean()), "rgb_mean": rgb_mean,
                                "saturated_fraction": float(saturated[j]), "vmin": vmin, "vmax": vmax,
                                "units": units})
        if kind == "field" and image is not None:
            fig.colorbar(image, ax=axes.ravel().tolist(), label=quantity_label(record, channel), fraction=0.04,
                         pad=0.02, aspect=max(10, 8 * n_rows))
        return _save(fig, out_stem, pd.DataFrame(records))


# --------------------------------------------------------------------------------------
# 4. Power spectra and one-point PDFs (fields)
# --------------------------------------------------------------------------------------


def plot_power_spectra(power_spectra_csv, comparison_csv, out_stem, quantity: str = "$G_0$", unit: str = "Habing",
                       power_of: str = "log10", length_unit: str = "map side") -> FigureFiles:
    """Set-mean radial power spectra with their spread over maps, against the few-shot targets.

    Top: P(k) of every set of ``power_spectra.csv`` (mean over maps; band: the standard
    deviation s over maps as a factor, mean x/÷ (1 + s / mean), which is symmetric on the
    log axis, always positive and mean +- s to first order for a small spread).
    Bottom: the ratio of each set's mean spectrum to the targets' (set ``fewshot``). The
    legend gives each set's fitted power-law slope: ``set_value`` of its
    ``power_slope_difference`` row in ``comparison.csv``, the targets' from ``real_value``
    (fits in log10-log10, :func:`discoverydiff.stats.fit_power_law`).

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
        ``band_upper`` (as drawn), ``ratio_to_fewshot``, ``slope``, ``n_maps``.
    """
    spectra = pd.read_csv(power_spectra_csv)
    comparison = pd.read_csv(comparison_csv)
    for column in ("set", "k", "power_mean", "power_std"):
        if column not in spectra:
            raise InputError(power_spectra_csv, f"has no column {column!r} (columns: {list(spectra.columns)})")
    if spectra.empty:
        raise InputError(power_spectra_csv, "holds no spectra (is the dataset a field?)")
    if SPLIT_FEWSHOT not in set(spectra["set"]):
        raise InputError(power_spectra_csv, f"has no '{SPLIT_FEWSHOT}' spectrum to compare the sets with")
    slope_rows = comparison[comparison["statistic"] == "power_slope_difference"]
    slopes = dict(zip(slope_rows["set"], slope_rows["set_value"].astype(float)))
    if len(slope_rows):
        slopes[SPLIT_FEWSHOT] = float(slope_rows["real_value"].iloc[0])
    spectra = spectra[np.isfinite(spectra["k"]) & np.isfinite(spectra["power_mean"])]
    real = spectra[spectra["set"] == SPLIT_FEWSHOT].set_index("k")["power_mean"]
    order = [SPLIT_FEWSHOT] + [s for s in dict.fromkeys(spectra["set"]) if s != SPLIT_FEWSHOT]
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
            style = "--" if name == SPLIT_HELDOUT else "-"
            top.fill_between(k, lower, upper, color=colour, alpha=0.15, lw=0)
            top.plot(k, mean, style, color=colour, label=text, marker="o", ms=2)
            ratio = mean / real.reindex(k).to_numpy(dtype=np.float64)
            if name != SPLIT_FEWSHOT:
                bottom.plot(k, ratio, style, color=colour, marker="o", ms=2)
            rows += [{"set": name, "k": k[j], "power_mean": mean[j], "power_std": std[j], "band_lower": lower[j],
                      "band_upper": upper[j], "ratio_to_fewshot": ratio[j], "slope": slope,
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
        bottom.set_ylabel("P / P$_{targets}$")
        bottom.set_xlabel(f"wavenumber k [rad per {length_unit}]")
        top.legend(loc="lower left")
        return _save(fig, out_stem, pd.DataFrame(rows))


def plot_pdfs(tensors_h5, sets: Mapping[str, object], out_stem, bins: int = 40, include_heldout: bool = True,
              channel: int = 0) -> FigureFiles:
    """One-point PDFs of log10 of the field, per set, against the few-shot targets.

    Values are pooled over every map of a set (physical units through the dataset's
    record) and binned on common edges, the record's range in log10 (log10 records: lo to
    hi); the density is per dex over the values in range
    (:func:`discoverydiff.stats.pdf_log10`). Fields with non-positive values (asinh
    records) are binned linearly instead.

    Parameters
    ----------
    tensors_h5 : str or Path
    sets : dict of str -> path
    out_stem : str or Path
    bins : int
    include_heldout : bool
        Add the held-out targets (the sampling-noise floor), as the statistics do.
    channel : int

    Returns
    -------
    FigureFiles
        Sidecar: ``set``, ``left``, ``right`` (bin edges, log10 of the unit), ``density``,
        ``n_values`` (pooled values of the set), ``n_in_range``.
    """
    from .stats import pdf_log10

    record = _read_record(tensors_h5)
    real = _real_sets(tensors_h5, record, include_heldout)
    data = {name: images.physical[:, channel] for name, images in real.items()}
    for name, path in sets.items():
        data[name] = _physical(path, record, tensors_h5).physical[:, channel]
    logarithmic = all(np.all(v > 0) for v in data.values())
    name, unit = _quantity(record, channel)
    if logarithmic:
        values = {k: np.log10(v).ravel() for k, v in data.items()}
        lo, hi = ((record.lo[channel], record.hi[channel]) if record.transform == "log10"
                  else (min(v.min() for v in values.values()), max(v.max() for v in values.values())))
        xlabel, ylabel = _log_label(record, channel), "PDF [dex$^{-1}$]"
    else:
        values = {k: v.ravel() for k, v in data.items()}
        lo, hi = min(v.min() for v in values.values()), max(v.max() for v in values.values())
        xlabel, ylabel = quantity_label(record, channel), _with_unit("PDF", f"{unit}$^{{-1}}$" if unit else "")
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    # to_physical clips to the record's range, so a float round-off must not drop the end values
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
            ax.stairs(density, edges, color=colour, linestyle="--" if set_name == SPLIT_HELDOUT else "-",
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


# --------------------------------------------------------------------------------------
# 5. Galaxy morphology
# --------------------------------------------------------------------------------------


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


def plot_morphology(tensors_h5, sets: Mapping[str, object], out_stem, include_heldout: bool = True,
                    morphology_kwargs: dict | None = None) -> FigureFiles:
    """Gini-M20 and concentration-asymmetry planes of every set (statmorph).

    Each image (physical units through the dataset's record; the mean of its channels) is
    measured by :func:`discoverydiff.stats.galaxy_morphology`; failed fits are left out and
    counted in the legend. The axes frame the real targets and the central 90% of all values;
    values beyond (degenerate fits of noise-like samples) are drawn as crosses at the edge.
    Guides: the Lotz et al. (2008, ApJ 672, 177) lines
    G = -0.14 M20 + 0.33 (mergers above) and G = 0.14 M20 + 0.80 (E/S0/Sa above, Sb-Irr
    below), and Conselice's (2003, ApJS 147, 1) A = 0.35 (mergers right of it). They were
    calibrated on well-resolved SDSS galaxies; on small cutouts they are indicative only.

    Parameters
    ----------
    tensors_h5 : str or Path
    sets : dict of str -> path
    out_stem : str or Path
    include_heldout : bool
    morphology_kwargs : dict, optional
        Keywords of :func:`discoverydiff.stats.galaxy_morphology` (the same as the
        statistics, so that the figure shows what ``comparison.csv`` measured).

    Returns
    -------
    FigureFiles
        Sidecar: one row per image, ``set``, ``name``, ``gini``, ``m20``, ``concentration``,
        ``asymmetry``, ``failed``, ``error``.
    """
    from .stats import galaxy_morphology

    record = _read_record(tensors_h5)
    data = _real_sets(tensors_h5, record, include_heldout)
    for name, path in sets.items():
        data[name] = _physical(path, record, tensors_h5)
    tables = []
    for name, (phys, names, _) in data.items():
        table = galaxy_morphology(phys, names=names, **dict(morphology_kwargs or {}))
        table.insert(0, "set", name)
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    ok = table[~table["failed"]]
    real = ok[ok["set"].isin([SPLIT_FEWSHOT, SPLIT_HELDOUT])]
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
            marker = "*" if name == SPLIT_FEWSHOT else ("s" if name == SPLIT_HELDOUT else "o")
            kwargs = {"color": colour, "marker": marker, "s": 18 if marker == "*" else 9, "lw": 0,
                      "alpha": 0.85, "zorder": 3 if name in (SPLIT_FEWSHOT, SPLIT_HELDOUT) else 2}
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


# --------------------------------------------------------------------------------------
# 6. Memorization
# --------------------------------------------------------------------------------------


def plot_memorization(tensors_h5, sets: Mapping[str, object], out_stem, threshold: float = 1.0 / 3.0,
                      kind: str | None = None, features: Callable | None = None, include_heldout: bool = True,
                      bins: int = 20) -> FigureFiles:
    """Nearest-neighbour ratio d1/d2 of every set against the few-shot targets.

    For each sample, d1 and d2 are the distances to its nearest and second-nearest few-shot
    target (:func:`discoverydiff.stats.nearest_neighbour_ratios`); a ratio below
    ``threshold`` marks a near-copy, and the share of them is the memorization score
    (Zhang et al. 2024; :func:`discoverydiff.stats.memorization_score`). Features are those
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
    include_heldout : bool
        Add the held-out targets: real images that are not copies, the reference level.
    bins : int
        Bins over [0, 1].

    Returns
    -------
    FigureFiles
        Sidecar: ``set``, ``left``, ``right``, ``count``, ``n``, ``score``, ``threshold``.
    """
    from .stats import memorization_score, nearest_neighbour_ratios

    record = _read_record(tensors_h5)
    kind = _resolve_kind(kind, record)
    real = _real_sets(tensors_h5, record, include_heldout)
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
            score = memorization_score(ratios, threshold)
            label, colour = _set_style(name, position + 1)
            counts, _ = np.histogram(np.clip(ratios, 0.0, 1.0), bins=edges)
            ax.stairs(counts / max(len(ratios), 1), edges, color=colour, lw=1.0,
                      linestyle="--" if name == SPLIT_HELDOUT else "-",
                      label=f"{label} ({len(ratios)}): memorization score {score:.2f}")
            rows += [{"set": name, "left": edges[b], "right": edges[b + 1], "count": int(counts[b]),
                      "n": len(ratios), "score": score, "threshold": threshold} for b in range(bins)]
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, None)
        ax.margins(y=0.05)
        ax.set_xlabel("d$_1$ / d$_2$ (nearest / second-nearest few-shot target)")
        ax.set_ylabel("fraction of samples per bin")
        fig.legend(loc="outside upper center", ncols=1)
        return _save(fig, out_stem, pd.DataFrame(rows))


# --------------------------------------------------------------------------------------
# All figures of a dataset
# --------------------------------------------------------------------------------------


FIGURES_COMMON = ("reconstruction", "latent_geometry", "samples", "memorization")
FIGURES_BY_KIND = {"field": ("power_spectra", "pdfs"), "galaxy": ("morphology",)}


def figure_names(kind: str) -> tuple[str, ...]:
    """The figures drawn for a dataset of ``kind`` (``field`` or ``galaxy``), in story order."""
    kind = _resolve_kind(kind, None)
    return FIGURES_COMMON[:3] + FIGURES_BY_KIND[kind] + FIGURES_COMMON[3:]


def figure_inputs(name: str, results_dir, base_model_dir) -> list[Path]:
    """The result files figure ``name`` is drawn from (besides ``tensors.h5`` and the sample sets)."""
    results, base = Path(results_dir), Path(base_model_dir)
    return {
        "reconstruction": [results / "reconstruction.h5", results / "reconstruction.csv"],
        "latent_geometry": [results / "latents.h5", base / "id_latents.h5"],  # discovered latents when present
        "power_spectra": [results / "power_spectra.csv", results / "comparison.csv"],
    }.get(name, [])


def default_sets(results_dir, base_model_dir) -> dict[str, Path]:
    """The sample sets of one dataset that exist: discovered, base model, fine-tuned baseline."""
    results, base = Path(results_dir), Path(base_model_dir)
    candidates = (("samples", results / "samples.h5"), ("base_samples", base / "samples.h5"),
                  ("baseline_samples", results / "baseline_samples.h5"))
    return {name: path for name, path in candidates if path.exists()}


def make_figure(name: str, results_dir, base_model_dir, out_dir, kind: str | None,
                stats_cfg: dict | None = None, sets: Mapping[str, object] | None = None) -> FigureFiles:
    """Draw one figure of one dataset from its results; rule ``figure`` calls this.

    Parameters
    ----------
    name : one of :func:`figure_names` (``kind``).
    results_dir : the dataset's results directory (``results/{dataset}``).
    base_model_dir : ``results/base_model`` (base-model samples and ID latents).
    out_dir : the figure's three files are ``out_dir/name.{pdf,png,csv}``.
    kind : ``field`` or ``galaxy`` (the dataset's config ``kind``); None guesses from the record.
    stats_cfg : dict, optional
        The config's ``stats`` section: ``power_of``, ``boxlength`` and
        ``memorization_threshold`` label and set the figures as the statistics were computed.
    sets : mapping, optional
        Sample-set name -> tensor file; default :func:`default_sets`.
    """
    results, base, out = Path(results_dir), Path(base_model_dir), Path(out_dir)
    cfg = dict(stats_cfg or {})
    tensors = results / "tensors.h5"
    record = _read_record(tensors)
    kind = _resolve_kind(kind, record)
    if name not in figure_names(kind):
        raise ValueError(f"figure {name!r} is not drawn for {kind} datasets; those are {figure_names(kind)}")
    missing = [str(p) for p in figure_inputs(name, results, base) if not p.exists()]
    if missing:
        raise InputError(missing[0], f"is missing; figure {name} is drawn from it")
    sets = default_sets(results, base) if sets is None else dict(sets)
    stem = out / name
    if name == "reconstruction":
        return plot_reconstruction(tensors, results / "reconstruction.h5", results / "reconstruction.csv", stem,
                                   kind=kind)
    if name == "latent_geometry":
        discovered = results / "discovered_latents.h5"
        return plot_latent_geometry(results / "latents.h5", base / "id_latents.h5",
                                    discovered if discovered.exists() else None, stem)
    if name == "samples":
        return plot_sample_grids(tensors, sets, stem, kind=kind)
    if name == "power_spectra":
        symbol, unit = _quantity(record)
        boxlength = float(cfg.get("boxlength", 1.0))
        length = "map side" if boxlength == 1.0 else f"(map side / {boxlength:g})"
        return plot_power_spectra(results / "power_spectra.csv", results / "comparison.csv", stem,
                                  quantity=symbol, unit=unit, power_of=cfg.get("power_of", "log10"),
                                  length_unit=length)
    if name == "pdfs":
        return plot_pdfs(tensors, sets, stem)
    if name == "morphology":
        return plot_morphology(tensors, sets, stem)
    return plot_memorization(tensors, sets, stem, threshold=float(cfg.get("memorization_threshold", 1.0 / 3.0)),
                             kind=kind)


def make_all_figures(results_dir, base_model_dir, out_dir, kind: str, stats_cfg: dict | None = None) -> list[Path]:
    """Every figure that applies to one dataset, from its results directory.

    Reads ``results/{dataset}/`` (``tensors.h5``, ``reconstruction.h5|csv``, ``latents.h5``,
    ``discovered_latents.h5``, ``samples.h5``, ``baseline_samples.h5`` when present,
    ``power_spectra.csv``, ``comparison.csv``) and ``results/base_model/`` (``samples.h5``,
    ``id_latents.h5``), and writes :func:`figure_names` (``kind``) into ``out_dir`` (each
    ``.pdf``, ``.png``, ``.csv``). A figure whose inputs are missing is skipped with a log message.

    Returns
    -------
    list of Path
        Every file written.
    """
    record = _read_record(Path(results_dir) / "tensors.h5")
    written: list[Path] = []
    for name in figure_names(_resolve_kind(kind, record)):
        try:
            written += make_figure(name, results_dir, base_model_dir, out_dir, kind, stats_cfg)
        except InputError as error:
            log.info("skipping figure %s: %s", name, error)
    return written


__all__ = ["FIGURES_BY_KIND", "FIGURES_COMMON", "FigureFiles", "figure_inputs", "figure_names", "make_all_figures",
           "make_figure", "plot_latent_geometry", "plot_memorization", "plot_morphology",
           "plot_pdfs", "plot_power_spectra", "plot_reconstruction", "plot_sample_grids", "quantity_label"]
