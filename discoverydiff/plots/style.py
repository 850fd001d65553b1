"""Style, set colours and the helpers every figure shares.

The journal sizes and ``rcParams`` of the figures, the name and colour of each set, reading
the dataset's normalization record and mapping tensor files to physical units, axis labels
and colour scales, and saving a figure's three files (:class:`FigureFiles`) atomically.

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
  few-shot targets black, test maps grey, discovered vermillion, base model blue,
  fine-tuned baseline green.
- Sizes are journal columns (3.4 in single, 7 in double), fonts 7-8 pt; figures use
  constrained layout and a local ``rcParams`` context, never the global state, and
  matplotlib's object-oriented API without pyplot (no backend is switched).
- Output is reproducible: no creation date in the PDF, no software tag in the PNG; each
  file appears under its final name only once it is complete.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.colors import AsinhNorm, LogNorm, Normalize
from matplotlib.figure import Figure

from ..errors import InputError
from ..normalize import NormalizationRecord
from ..store import SPLIT_FEWSHOT, SPLIT_TEST, atomic_path, read_attrs, read_tensor_file

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
    "test": ("test maps (unseen)", "0.55"),
    "validation": ("validation maps", "0.75"),
    "samples": ("discovered", "#D55E00"),
    "discovered": ("discovered", "#D55E00"),  # the samples' name in tables; also the discovered latents
    "base_samples": ("base model", "#0072B2"),
    "baseline_samples": ("fine-tuned baseline", "#009E73"),
    "baseline_selected": ("fine-tuned, selected", "#56B4E9"),
    "discovered_unscreened": ("discovered, unscreened", "#E69F00"),
    "discovered_prior": ("paper's prior scheme", "#AA4499"),
    "empirical": ("few-shot optimal denoiser", "#CC79A7"),
    "target": ("target latents", "black"),
    "id": ("ID latents (base model)", "#0072B2"),
}
#: Sets of the tables that the figures leave out (the controls and the validation maps), so that a figure
#: shows the discovered set, the base model, the fine-tuned baseline and the few-shot and test maps.
TABLE_ONLY_SETS = ("baseline_selected", "discovered_unscreened", "discovered_prior", "validation")
_EXTRA_COLOURS = ("#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
_GENERIC_CHANNEL_NAMES = {"", "field", "value"}


class FigureFiles(NamedTuple):
    """The three files of one figure."""

    pdf: Path
    png: Path
    data: Path


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


def _real_sets(tensors_h5, record, include_test: bool) -> dict[str, _Images]:
    """The real maps as ingest kept them (unclipped), ``saturated`` from ingest's clip mask."""
    from ..physical import real_physical_maps

    images = read_tensor_file(tensors_h5)
    if images.split is None:
        raise InputError(tensors_h5, "has no 'split' dataset; the few-shot targets cannot be told apart")
    out = {}
    for split in (SPLIT_FEWSHOT, SPLIT_TEST) if include_test else (SPLIT_FEWSHOT,):
        if not (images.split == split).any():
            continue
        values, clipped, names, _ = real_physical_maps(tensors_h5, split)
        out[split] = _Images(values, list(names), clipped.reshape(len(values), -1).mean(axis=1))
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
    with atomic_path(path) as tmp:
        write(tmp)
    return path


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Figure, out_stem, data: pd.DataFrame) -> FigureFiles:
    """Write ``<stem>.pdf``, ``<stem>.png`` and the data sidecar ``<stem>.csv``.

    The sidecar names the discovered samples ``discovered``, as every table does.
    """
    from ..stats.novelty import table_set_name

    if "set" in data.columns:
        data = data.assign(set=data["set"].map(table_set_name))
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
