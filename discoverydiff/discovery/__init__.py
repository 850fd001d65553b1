"""Discovery: new latents for an unseen domain inside a frozen diffusion model, and their screening.

The few-shot targets' inverted latents form a cluster apart from the base model's own (ID)
latents. Discovery proposes candidates between them, keeps those whose geometry matches the
cluster's, and screens what they decode to. One module a step, each importable on its own:

- :mod:`.geometry`: slerp, distances and angles from dot products (:class:`References`), and the
  two clusters' summary table (:func:`latent_geometry`);
- :mod:`.candidates`: the ``pairs`` scheme (:class:`PairCandidates`) and the paper's ``prior``
  scheme (:class:`SlerpCandidates`, :class:`GaussianPrior`);
- :mod:`.acceptance`: the three criteria (:data:`CRITERIA`), their windows measured on the targets
  (:func:`measure_targets`), and what to change when too few pass;
- :mod:`.sampling`: the acceptance loop with its quotas (:func:`discover`);
- :mod:`.screening`: decoded candidates compared with the few-shot maps (:func:`screen`);
- :mod:`.set_selection`: the subset whose pooled statistics match (:func:`select_set`);
- :mod:`.files`: all of it over tensor files, as rule ``discover`` runs it (:func:`discover_from_files`);
- :mod:`.search`: the settings chosen on the validation maps (:func:`choose_settings`, rule ``settings``);
- :mod:`.sweep`: the novelty-fidelity trade-off over one knob (:func:`novelty_fidelity_sweep`);
- :mod:`.mixing`: what mixing alone does to a field's one-point statistics
  (``python -m discoverydiff.discovery.mixing RESULTS``).

Every public name is re-exported here: ``from discoverydiff.discovery import NAME``.
"""

from __future__ import annotations

from .acceptance import CRITERIA, AcceptanceTargets, _criteria_from_dots, criterion_values, measure_targets, passes
from .candidates import SCHEMES, GaussianPrior, PairCandidates, SlerpCandidates
from .files import decode_discovered, discover_from_files, screen_oversample, screen_steps
from .geometry import (
    References,
    angles_at_origin,
    angles_at_points,
    angles_deg,
    latent_geometry,
    pairwise_distances,
    slerp,
    slerp_coefficients,
)
from .mixing import discovered_pairs, mixing_table, pair_mixtures
from .sampling import DiscoveryResult, TooFewAccepted, discover
from .screening import (
    SCORES,
    SELECT,
    STATISTICS,
    TABLE_COLUMNS,
    manifold_margin,
    map_statistics,
    preview,
    screen,
    screen_images,
    screen_scores,
    select,
)
from .search import FALLBACK, choose_settings, resolve
from .set_selection import SET_STATISTICS, MapSums, map_sums, pooled_statistics, select_set
from .sweep import NOVELTY_COLUMNS, fidelity_distance, novelty_fidelity_sweep

__all__ = [
    "CRITERIA",
    "FALLBACK",
    "NOVELTY_COLUMNS",
    "SCHEMES",
    "SCORES",
    "SELECT",
    "SET_STATISTICS",
    "STATISTICS",
    "TABLE_COLUMNS",
    "AcceptanceTargets",
    "DiscoveryResult",
    "GaussianPrior",
    "MapSums",
    "PairCandidates",
    "References",
    "SlerpCandidates",
    "TooFewAccepted",
    "_criteria_from_dots",
    "angles_at_origin",
    "angles_at_points",
    "angles_deg",
    "choose_settings",
    "criterion_values",
    "decode_discovered",
    "discover",
    "discover_from_files",
    "discovered_pairs",
    "fidelity_distance",
    "latent_geometry",
    "manifold_margin",
    "map_statistics",
    "map_sums",
    "measure_targets",
    "mixing_table",
    "novelty_fidelity_sweep",
    "pair_mixtures",
    "pairwise_distances",
    "passes",
    "pooled_statistics",
    "preview",
    "resolve",
    "screen",
    "screen_images",
    "screen_oversample",
    "screen_scores",
    "screen_steps",
    "select",
    "select_set",
    "slerp",
    "slerp_coefficients",
]
