"""Reproducibility figure: the same initial noise through the base model, the fine-tuned model and
the few-shot set's optimal denoiser, one column per noise."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ..errors import InputError
from .samples import draw_grid
from .style import FigureFiles, _Images, _physical, _read_record, _resolve_kind

_ROWS = ("base_samples", "baseline_samples")
log = logging.getLogger(__name__)


def plot_reproducibility(tensors_h5, sets: Mapping[str, object], empirical_h5, out_stem, kind: str | None = None,
                         n: int = 8, channel: int = 0) -> FigureFiles:
    """Samples of the same names (the same initial noise) of each model, in physical units.

    Rows: the base model (``base_samples``), the fine-tuned baseline (``baseline_samples``, when
    in ``sets``), the few-shot set's optimal denoiser (``empirical_h5``, rule ``sample_empirical``).
    Columns: the first ``n`` names all rows share. Above each model tile: the cosine similarity to
    the empirical tile of its column (pixels, log10 for fields, each image's mean removed; rpscore
    counts those above 0.6).

    Returns
    -------
    FigureFiles
        Sidecar as :func:`~discoverydiff.plots.samples.plot_sample_grids`'s, plus ``value``: the
        tile's cosine similarity to the empirical tile (NaN on the empirical row).
    """
    from ..stats.neighbours import paired_cosine_similarity
    from ..stats.novelty import pixel_features

    record = _read_record(tensors_h5)
    kind = _resolve_kind(kind, record)
    rows = {name: _physical(sets[name], record, tensors_h5) for name in _ROWS if name in sets}
    if "base_samples" not in rows:
        raise InputError(tensors_h5, "reproducibility needs the base-model samples (set base_samples)")
    rows["empirical"] = _physical(empirical_h5, record, tensors_h5)
    shared = [name for name in rows["empirical"].names if name in set(rows["base_samples"].names)]
    if not shared:
        raise InputError(empirical_h5, "shares no sample name (initial noise) with the base-model samples")
    for name in [r for r in rows if r not in ("base_samples", "empirical")]:
        if set(shared) & set(rows[name].names):
            shared = [s for s in shared if s in set(rows[name].names)]
        else:  # a set drawn from other noise has nothing to pair: left out, and said so
            log.warning("reproducibility: %s shares no initial noise with the base-model samples; not shown", name)
            del rows[name]
    shared = shared[:n]
    paired = {}
    for set_name, images in rows.items():
        index = {name: i for i, name in enumerate(images.names)}
        take = [index[name] for name in shared]
        paired[set_name] = _Images(images.physical[take], shared, images.saturated[take])

    features = pixel_features(kind)  # the space of rpscore_vs_empirical in comparison.csv
    similarity = {name: paired_cosine_similarity(paired[name].physical, paired["empirical"].physical, features,
                                                 center=True)
                  for name in paired if name != "empirical"}
    return draw_grid(paired, record, kind, out_stem, n, channel, tile_values=similarity)
