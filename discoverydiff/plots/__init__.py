"""Paper figures of one dataset's results, each with the numbers it shows.

Every figure function reads result files of the workflow (tensor files, CSV tables) and
writes three files sharing one stem: ``<stem>.pdf`` (vector, for a paper), ``<stem>.png``
(300 dpi, for the Snakemake report) and ``<stem>.csv``, the numbers actually drawn, so that
a figure can be traced back to, and tested against, the run that made it. Each returns a
:class:`FigureFiles` (pdf, png, data).

Modules
-------
- :mod:`.style`: sizes, ``rcParams``, set names and colours, :class:`FigureFiles`, and the
  shared helpers (normalization record, physical units, labels, colour scales, atomic
  saving); its docstring states the conventions every figure follows.
- :mod:`.reconstruction`: :func:`plot_reconstruction`.
- :mod:`.geometry`: :func:`plot_latent_geometry`.
- :mod:`.samples`: :func:`plot_sample_grids`.
- :mod:`.fields`: :func:`plot_power_spectra`, :func:`plot_pdfs` (field datasets).
- :mod:`.morphology`: :func:`plot_morphology` (galaxy datasets).
- :mod:`.memorization`: :func:`plot_memorization`.
- :mod:`.registry`: the figures of each kind of dataset and drawing them
  (:func:`figure_names`, :func:`figure_inputs`, :func:`default_sets`, :func:`make_figure`,
  :func:`make_all_figures`).

Every public name is re-exported here: import from ``discoverydiff.plots``.
"""

from __future__ import annotations

from .fields import plot_pdfs, plot_power_spectra
from .geometry import plot_latent_geometry
from .memorization import plot_memorization
from .morphology import plot_morphology
from .novelty import plot_novelty_fidelity
from .reconstruction import plot_reconstruction
from .registry import FIGURES_BY_KIND, FIGURES_COMMON, figure_inputs, figure_names, make_all_figures, make_figure
from .registry import default_sets as default_sets
from .registry import log as log
from .samples import plot_sample_grids
from .style import DOUBLE_COLUMN_IN as DOUBLE_COLUMN_IN
from .style import KINDS as KINDS
from .style import PNG_DPI as PNG_DPI
from .style import SINGLE_COLUMN_IN as SINGLE_COLUMN_IN
from .style import FigureFiles, quantity_label

# __all__ is the former module's (``import *`` unchanged); the constants, default_sets and log
# are re-exported by name above
__all__ = ["FIGURES_BY_KIND", "FIGURES_COMMON", "FigureFiles", "figure_inputs", "figure_names", "make_all_figures",
           "make_figure", "plot_latent_geometry", "plot_memorization", "plot_morphology", "plot_novelty_fidelity",
           "plot_pdfs", "plot_power_spectra", "plot_reconstruction", "plot_sample_grids", "quantity_label"]
