"""All figures of a dataset: which figures a kind of dataset gets, their inputs, and drawing them.

:func:`make_figure` is what the workflow's rule ``figure`` calls (``workflow_scripts/figure.py``);
:func:`make_all_figures` draws every figure of one dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from ..errors import InputError
from ..store import SPLIT_FEWSHOT, SPLIT_TEST
from .fields import plot_pdfs, plot_power_spectra
from .geometry import plot_latent_geometry
from .jacobian import plot_jacobian_rank
from .memorization import plot_memorization
from .morphology import plot_morphology
from .novelty import plot_novelty_fidelity
from .reconstruction import plot_reconstruction
from .reproducibility import plot_reproducibility
from .samples import plot_sample_grids
from .style import FigureFiles, _quantity, _read_record, _resolve_kind

# the logger of the former module discoverydiff.plots, so that log records keep their name
log = logging.getLogger(__package__)

#: Drawn only when asked for (their inputs cost more than the demo's budget): rule novelty_sweep.
FIGURES_OPT_IN = ("novelty_fidelity",)
FIGURES_COMMON = ("reconstruction", "latent_geometry", "samples", "memorization", "jacobian", "reproducibility")
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
        "morphology": [results / "morphology" / f"{SPLIT_FEWSHOT}.csv"],  # other sets' tables when present
        # opt-in (not in figure_names): needs rule novelty_sweep, which decodes a set per setting
        "novelty_fidelity": [results / "novelty_sweep.csv"],
        "jacobian": [results / "jacobian.csv"],
        "reproducibility": [base / "samples.h5", results / "empirical_samples.h5"],  # the fine-tuned set if present
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
    if name not in (*figure_names(kind), *FIGURES_OPT_IN):
        raise ValueError(f"figure {name!r} is not drawn for {kind} datasets; those are {figure_names(kind)} "
                         f"and, on request, {FIGURES_OPT_IN}")
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
    if name == "novelty_fidelity":
        return plot_novelty_fidelity(results / "novelty_sweep.csv", stem, kind=kind)
    if name == "jacobian":
        return plot_jacobian_rank(results / "jacobian.csv", stem)
    if name == "reproducibility":
        return plot_reproducibility(tensors, sets, results / "empirical_samples.h5", stem, kind=kind)
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
        tables = {name: results / "morphology" / f"{name}.csv" for name in (SPLIT_FEWSHOT, SPLIT_TEST, *sets)}
        return plot_morphology({name: path for name, path in tables.items() if path.exists()}, stem)
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
