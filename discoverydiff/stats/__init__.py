"""Domain statistics: power spectra, one-point PDFs, galaxy morphology, memorization, distances.

Pure functions over arrays, so that the same numbers come out of the workflow, a notebook
and the tests. Every statistic names its convention (see each submodule), so that results
can be compared with other codes. What lives where:

- :mod:`.power`: FFT power spectra (powerbox's convention) and log-log power-law fits
  (TurbuStat's): :func:`power_spectrum_bin_edges`, :func:`radial_power_spectrum`,
  :func:`fit_power_law`;
- :mod:`.onepoint`: one-point statistics (``scipy.stats`` conventions): :func:`pdf_log10`,
  :func:`pdf_moments`, :func:`wasserstein1`;
- :mod:`.morphology`: statmorph galaxy morphology (CAS, Gini-M20, Sersic):
  :func:`galaxy_morphology`, :func:`morphology_of_set` (rule ``morphology``);
- :mod:`.neighbours`: nearest neighbours and the reproducibility score (Zhang et al. 2024):
  :func:`nearest_neighbour_ratios`, :func:`paired_cosine_similarity`,
  :func:`reproducibility_score`, :func:`load_feature_extractor`;
- :mod:`.novelty`: new member or copy: :func:`novelty_table`, :func:`near_copy_share`,
  :func:`mscore`, :func:`novelty_w1`, :func:`source_share`, :func:`max_cosine_similarity`,
  :func:`paired_reproducibility`, :func:`bootstrap_interval`;
- :mod:`.sources`, :mod:`.summaries`: sets of maps read block by block, and the per-map
  summaries (spectra, histograms on a shared grid, power sums, novelty rows) every statistic
  is computed from, so that memory does not grow with the number of maps;
- :mod:`.resampling`: intervals that resample both the judged set and the reference, permutation
  p-values, and which way each statistic is better;
- :mod:`.two_sample`: the multivariate energy-distance two-sample test;
- :mod:`.comparison`: every set against a reference set of real maps: :func:`compare_sets`;
- :mod:`.dataset`: rule ``stats`` on one dataset's files, against its test maps:
  :func:`dataset_statistics`, :func:`read_morphology_table`.

Every public name is re-exported here, so ``from discoverydiff.stats import NAME`` works
for all of them.
"""

from __future__ import annotations

from .comparison import compare_sets
from .dataset import DatasetStatistics, dataset_statistics, read_morphology_table
from .morphology import MORPHOLOGY_PARAMETERS, MORPHOLOGY_SETTINGS, galaxy_morphology, morphology_of_set
from .neighbours import (
    load_feature_extractor,
    nearest_neighbour_ratios,
    paired_cosine_similarity,
    reproducibility_score,
)
from .novelty import (
    DISCOVERED_SET,
    bootstrap_interval,
    max_cosine_similarity,
    mscore,
    near_copy_share,
    novelty_table,
    novelty_w1,
    paired_reproducibility,
    source_share,
    table_set_name,
)
from .onepoint import pdf_log10, pdf_moments, wasserstein1
from .power import BACKENDS, WINDOWS, fit_power_law, power_law_slope, power_spectrum_bin_edges, radial_power_spectrum
from .summaries import FIELD_POWER_OF
from .two_sample import energy_distance, energy_test

__all__ = [
    "BACKENDS",
    "DISCOVERED_SET",
    "DatasetStatistics",
    "energy_distance",
    "energy_test",
    "bootstrap_interval",
    "max_cosine_similarity",
    "mscore",
    "near_copy_share",
    "novelty_table",
    "novelty_w1",
    "paired_reproducibility",
    "source_share",
    "table_set_name",
    "FIELD_POWER_OF",
    "MORPHOLOGY_PARAMETERS",
    "MORPHOLOGY_SETTINGS",
    "WINDOWS",
    "compare_sets",
    "dataset_statistics",
    "fit_power_law",
    "power_law_slope",
    "galaxy_morphology",
    "load_feature_extractor",
    "morphology_of_set",
    "nearest_neighbour_ratios",
    "paired_cosine_similarity",
    "pdf_log10",
    "pdf_moments",
    "power_spectrum_bin_edges",
    "radial_power_spectrum",
    "read_morphology_table",
    "reproducibility_score",
    "wasserstein1",
]
