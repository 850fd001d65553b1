"""Decoded screening of discovered latents: keep the candidates whose decoded maps look like the targets'.

The geometric criteria of :mod:`discoverydiff.discovery` judge a latent by its angles and
distances, not by what it decodes to. On the demo the accepted latents, mixtures of two
targets, decode to maps whose one-point PDFs are lighter-tailed and whose spectra are steeper
than the targets' (the base model's own prior shows through). Screening asks the decoded maps
directly, at a fraction of the cost of decoding them:

1. discovery accepts ``oversample`` times the latents wanted;
2. every candidate *and every few-shot target latent* is decoded with a short DDIM run
   (``preview_steps`` steps from the same t0, eta 0): a preview. Its per-map statistics
   follow the full decode closely (measured on the demo's radiation maps, 10 against 60
   steps, 64 candidates: Pearson r 0.99 for the mean, 0.99 std, 0.98 skewness, 0.93 kurtosis,
   0.97 power slope), and the targets' previews carry much the same preview bias as the
   candidates', so the two are compared nearly like with like (not exactly: on the demo's
   Gaussianized radiation maps the pooled log10 spectrum of the candidates' full decodes is 0.27
   flatter than that of their previews, the targets' maps' 0.41 flatter than their previews');
3. each preview gets :data:`STATISTICS` of its luminance (the channel mean, in the model's
   [-1, 1] space: for log-normalized fields an affine map of log10 f, so skewness, kurtosis
   and the z-scores below are those of log10 f; for Gaussianized fields, of the normal
   scores, where the per-map statistics are not dominated by a few tail pixels);
4. each statistic is measured from the targets' mean in units of the spread of the targets'
   and the candidates' previews together (:func:`screen_scores`), a candidate's score is the
   mean of its z squared, and the ``n_keep`` lowest scores are kept, in discovery's order
   (``select="each"``);
5. with ``select="set"`` that choice is only the start: members are
   swapped for outsiders while the kept set's *pooled* preview statistics (one-point moments,
   W1 to the targets' pooled values, the mean spectrum's slope and distance) come closer to the
   targets' previews' (:func:`discoverydiff.discovery.set_selection.select_set`), in the space the
   comparison tables measure (the record's transformed values, e.g. log10 G0: an affine map of
   the model's values unless the record Gaussianizes). The comparison judges sets; a set of
   individually good maps can share an offset (measured on the demo's Gaussianized radiation
   maps: the previews of mixtures sit below the targets' mean level) that only the set shows.
   One descent stops at a local minimum; ``restarts`` more start from random sets.

With ``preview_steps`` equal to the generation's own walk (``discovery.screen.preview_steps:
full``) a "preview" is the decoded sample itself, and the targets' side is the few-shot maps
(``reference_images``) rather than decodes of their latents: no preview bias on either side,
at the cost of full decodes of every candidate.

Nothing is dropped unseen: the screened-out latents stay in ``discovered_latents.h5`` (dataset
``screened_out``) and every candidate's statistics, z-scores, score and verdict are in
``screening.csv`` beside the targets' own rows.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from ..errors import ConfigError

log = logging.getLogger(__name__)

#: Per-map statistics of a preview's luminance, in this order.
STATISTICS = ("mean", "std", "skewness", "kurtosis", "power_slope")
#: Columns of the screening table (``z_*`` of a statistic no set varies in are left out).
TABLE_COLUMNS = ("set", "name", *STATISTICS, *(f"z_{c}" for c in STATISTICS), "margin", "score", "kept_by_score",
                 "kept")
#: How the kept candidates are chosen: each by its own score, or as a set (see the module docstring).
SELECT = ("set", "each")
#: What a candidate's score is: the mean squared z of its :data:`STATISTICS` (``moments``), or its
#: ``margin`` to the targets' k-NN manifold in the summary features (``features``, :func:`manifold_margin`).
SCORES = ("moments", "features")


def map_statistics(images) -> pd.DataFrame:
    """:data:`STATISTICS` of every image (N, C, H, W) or map (N, H, W), one row per image.

    ``skewness`` and ``kurtosis`` are scipy's (Fisher: a Gaussian has 0), of all pixels of the
    channel-mean luminance; ``power_slope`` is the log-log slope of its radially averaged power
    spectrum (mean removed) from 2 dk to half the Nyquist wavenumber (at least 5 dk), the range
    of the comparison tables' slope.
    """
    from scipy import stats

    from ..stats.power import fit_power_law, radial_power_spectrum, slope_fit_range

    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 4:
        x = x.mean(axis=1)
    if x.ndim != 3 or min(x.shape[1:]) < 4:
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W) of at least 4x4 pixels, got {np.shape(images)}")
    flat = x.reshape(len(x), -1)
    k, power = radial_power_spectrum(x, boxlength=1.0)[:2]
    k_lo, k_hi = slope_fit_range(x.shape[1:])
    slopes = [fit_power_law(k, p, k_lo, k_hi)[0] for p in np.atleast_2d(power)]
    return pd.DataFrame({"mean": flat.mean(axis=1), "std": flat.std(axis=1),
                         "skewness": stats.skew(flat, axis=1), "kurtosis": stats.kurtosis(flat, axis=1),
                         "power_slope": slopes})


def screen_scores(candidates: pd.DataFrame, targets: pd.DataFrame,
                  spread_of: pd.DataFrame | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """z-scores of the candidates' statistics and their mean square.

    z = (s - mean of the targets) / sqrt(var(targets) + var(spread_of)), variances with ddof 1;
    ``spread_of`` defaults to ``candidates``. The unit is the targets' spread widened by the
    candidates': on stationary fields the targets agree on their mean level to 0.01 while every
    candidate misses it by several of those, and with the targets' spread alone that one
    statistic decided the ranking (measured on 24 log-normal maps: the kept previews' power slope
    moved away from the targets'). A statistic that varies in neither set is left out.
    """
    if len(targets) < 2:
        raise ConfigError(f"screening needs at least 2 few-shot targets to measure their spread, have {len(targets)}")
    others = candidates if spread_of is None else spread_of
    mean = targets.mean()
    var_o = others.var(ddof=1) if len(others) > 1 else pd.Series(0.0, index=others.columns)
    std = np.sqrt(targets.var(ddof=1) + var_o.fillna(0.0))
    used = [c for c in STATISTICS if np.isfinite(std[c]) and std[c] > 0]
    if not used:
        raise ConfigError("screening: neither the few-shot targets' nor the candidates' previews vary in any statistic")
    z = (candidates[used] - mean[used]) / std[used]
    score = (z.to_numpy() ** 2).mean(axis=1)
    score[~np.isfinite(score)] = np.inf  # a flat preview has no slope: last in line
    return z, score


def manifold_margin(candidate_images, target_images, k: int = 3) -> np.ndarray:
    """How far each candidate lies outside the targets' k-NN manifold in the summary features: the smallest
    d(candidate, target j) / r_j over the targets, r_j the distance from target j to its k-th nearest
    other target (Kynkaanniemi et al. 2019's balls). Below 1 the candidate is inside some target's ball
    (what k-NN precision counts). Features: :func:`discoverydiff.fidelity.image_summary_features` of the
    images (N, C, H, W), each scaled to the targets' mean and spread; k is lowered to fit few targets.

    Measured on the demo's galaxy cutouts: mixtures of two targets decode with the background of a few
    corners or of the faintest quantiles off (a near-constant sky in the real cutouts), far outside the
    targets' features although their morphology is right; ranking by this margin keeps the candidates
    with a real-looking whole image.
    """
    from ..fidelity import _pairwise_distances, image_summary_features, knn_radii

    cand = image_summary_features(np.asarray(candidate_images, dtype=np.float64))
    targ = image_summary_features(np.asarray(target_images, dtype=np.float64))
    if len(targ) < 2:
        raise ConfigError(f"screening by features needs at least 2 few-shot targets, have {len(targ)}")
    mean, std = targ.mean(axis=0), targ.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    cand, targ = (cand - mean) / std, (targ - mean) / std
    radii = np.maximum(knn_radii(targ, min(int(k), len(targ) - 1)), 1e-12)
    return (_pairwise_distances(cand, targ) / radii[None, :]).min(axis=1)


def select(score: np.ndarray, n_keep: int) -> np.ndarray:
    """Boolean mask of the ``n_keep`` lowest scores (ties to the earlier candidate)."""
    score = np.asarray(score, dtype=np.float64)
    if n_keep > len(score):
        raise ValueError(f"cannot keep {n_keep} of {len(score)} candidates")
    keep = np.zeros(len(score), dtype=bool)
    keep[np.argsort(score, kind="stable")[:n_keep]] = True
    return keep


def preview(model, latents: torch.Tensor, t0: int, steps: int, options) -> np.ndarray:
    """Decode latents (N, C, H, W) with a ``steps``-step deterministic DDIM run from ``t0``."""
    from ..diffusion import DDIMSettings, ddim_generate, run_batched

    settings = DDIMSettings(int(t0), int(steps), 0.0)
    settings.sequence()  # validates
    device, eps_fn = options.eps_fn(model)
    x = latents.detach().cpu().float().numpy()

    def batches():
        for start in range(0, len(x), options.batch_size):
            part = x[start:start + options.batch_size]
            yield start, part, [""] * len(part)

    out = np.empty(x.shape, dtype=np.float32)
    for offset, decoded, _ in run_batched(lambda z: ddim_generate(eps_fn, z, model.alpha_bar, settings), batches(),
                                          device, len(x), desc="preview", eps_fn=eps_fn,
                                          memory_limit_mb=getattr(options, "memory_limit_mb", None)):
        out[offset:offset + len(decoded)] = decoded
    return out


def comparison_space(images: np.ndarray, record=None) -> np.ndarray:
    """Maps (N, H, W) of previews (N, C, H, W) as the comparison tables see them: the channel mean of
    the record's transformed values (:meth:`NormalizationRecord.to_transformed`), or of the model's
    values without a record."""
    x = np.asarray(images, dtype=np.float64) if record is None else record.to_transformed(images)
    return x.mean(axis=1)


def select_as_set(candidate_images, target_images, by_score: np.ndarray, record=None, seed: int = 0,
                  restarts: int = 0):
    """:func:`discoverydiff.discovery.set_selection.select_set` on previews, from the per-candidate choice."""
    from .set_selection import map_sums, select_set

    cand, targ = comparison_space(candidate_images, record), comparison_space(target_images, record)
    lo, hi = float(min(cand.min(), targ.min())), float(max(cand.max(), targ.max()))
    if not hi > lo:
        return by_score.copy(), {"swaps": 0, "reason": "constant previews"}
    shift = float(targ.mean())
    return select_set(map_sums(cand, lo, hi, shift), map_sums(targ, lo, hi, shift), by_score, seed=seed,
                      restarts=restarts)


def screen(model, options, t0: int, steps: int, candidates: torch.Tensor, targets: torch.Tensor | None, n_keep: int,
           candidate_names, target_names, select_by: str = "each", record=None, seed: int = 0,
           reference_images: np.ndarray | None = None,
           restarts: int = 0, score_by: str = "moments") -> tuple[np.ndarray, pd.DataFrame, dict | None]:
    """Preview candidates and targets, keep ``n_keep`` candidates that look like the targets.

    ``select_by``: ``each`` keeps the lowest scores; ``set`` starts there and swaps members while
    the set's pooled statistics come closer to the targets' (:func:`select_as_set`, with
    ``restarts`` random restarts; ``record``, the dataset's normalization record, gives the
    space). ``reference_images`` (N, C, H, W), the few-shot maps in the model's space, are the
    targets' side instead of previews of the ``targets`` latents: for full decodes (``steps`` the
    generation's own), which are the discovered samples themselves and are compared with what the
    comparison tables compare them with. Returns the boolean keep mask over the candidates, the
    table of every candidate and target (``set`` (candidate / fewshot), ``name``, the
    :data:`STATISTICS`, their ``z_*``, ``margin``, ``score``, ``kept_by_score``, ``kept``) and the set
    selection's record (None for ``each``). ``score_by``: :data:`SCORES`.
    """
    if select_by not in SELECT:
        raise ConfigError(f"discovery.screen.select must be one of {SELECT}, got {select_by!r}")
    if score_by not in SCORES:
        raise ConfigError(f"discovery.screen.score must be one of {SCORES}, got {score_by!r}")
    if reference_images is None:
        target_images = preview(model, targets, t0, steps, options)
    else:
        target_images = np.asarray(reference_images, dtype=np.float32)
        if target_images.shape[1:] != tuple(candidates.shape[1:]):
            raise ConfigError(f"screening: reference maps {target_images.shape[1:]} and latents "
                              f"{tuple(candidates.shape[1:])} differ in shape")
    cand_images = preview(model, candidates, t0, steps, options)
    return screen_images(cand_images, target_images, n_keep, candidate_names, target_names, select_by, record, seed,
                         restarts, score_by)


def screen_images(cand_images: np.ndarray, target_images: np.ndarray, n_keep: int, candidate_names, target_names,
                  select_by: str = "each", record=None, seed: int = 0,
                  restarts: int = 0, score_by: str = "moments") -> tuple[np.ndarray, pd.DataFrame, dict | None]:
    """Keep ``n_keep`` of the decoded candidates (N, C, H, W) that look like the targets' maps (M, C, H, W):
    :func:`screen` once the images are at hand (also the ``baseline_selected`` control's selection of
    fine-tuned samples). Returns the keep mask, the table and the set selection's record."""
    if select_by not in SELECT:
        raise ConfigError(f"discovery.screen.select must be one of {SELECT}, got {select_by!r}")
    if score_by not in SCORES:
        raise ConfigError(f"discovery.screen.score must be one of {SCORES}, got {score_by!r}")
    target_stats, cand_stats = map_statistics(target_images), map_statistics(cand_images)
    z, score = screen_scores(cand_stats, target_stats)
    margin = manifold_margin(cand_images, target_images)
    margin_t = manifold_margin(target_images, target_images)  # 0: each target is its own nearest
    if score_by == "features":
        score = margin
    by_score = select(score, n_keep)
    keep, set_record = by_score, None
    if select_by == "set":
        keep, set_record = select_as_set(cand_images, target_images, by_score, record, seed, restarts)
    z_t, score_t = screen_scores(target_stats, target_stats, spread_of=cand_stats)  # the same unit
    table = pd.concat([
        pd.DataFrame({"set": "fewshot", "name": list(target_names), **target_stats,
                      **{f"z_{c}": z_t[c] for c in z_t}, "margin": margin_t,
                      "score": margin_t if score_by == "features" else score_t, "kept_by_score": np.nan,
                      "kept": np.nan}),
        pd.DataFrame({"set": "candidate", "name": list(candidate_names), **cand_stats,
                      **{f"z_{c}": z[c] for c in z}, "margin": margin, "score": score, "kept_by_score": by_score,
                      "kept": keep}),
    ], ignore_index=True)
    log.info("screening kept %d of %d candidates (score %.2f-%.2f; screened out %.2f-%.2f; the targets' own "
             "scores %.2f-%.2f)", keep.sum(), len(keep), score[keep].min(), score[keep].max(),
             score[~keep].min() if (~keep).any() else np.nan, score[~keep].max() if (~keep).any() else np.nan,
             score_t.min(), score_t.max())
    if set_record is not None:
        log.info("set selection: %d swap(s), objective %.3g -> %.3g", set_record["swaps"],
                 set_record.get("objective_start", np.nan), set_record.get("objective_kept", np.nan))
    return keep, table, set_record


__all__ = ["SCORES", "SELECT", "STATISTICS", "TABLE_COLUMNS", "comparison_space", "manifold_margin", "map_statistics",
           "screen_scores", "select", "select_as_set", "preview", "screen", "screen_images"]
