"""Is a sample new, or a copy? Novelty against the few-shot targets, judged by the held-out ones.

A discovered sample should be as different from the few-shot targets as a real new member
of the domain is; the held-out targets show how different that is. Per sample:

- ``d1``, ``d2``: distances to the nearest and second-nearest few-shot target, and their
  ratio d1 / d2 (:func:`~discoverydiff.stats.neighbours.nearest_neighbour_ratios`). A ratio
  near 1 means no single target stands out; near 0, the sample is one target's copy.
- ``max_cosine``: the highest cosine similarity of the sample's features to any few-shot
  target.

Per set:

- :func:`near_copy_share`: share of samples with d1 / d2 < 1/3. This is the nearest-neighbour
  ratio test of Lowe (2004, IJCV 60, 91), used with the threshold 1/3 to flag memorized
  samples of diffusion models by Yoon et al. (2023, "Diffusion probabilistic models generalize
  when they fail to memorize") and Gu et al. (2023, "On memorization in diffusion models").
- :func:`mscore`: share of samples whose ``max_cosine`` exceeds 0.6, as the generalizability
  repository of Zhang et al. (2024, "The emergence of reproducibility and consistency in
  diffusion models") defines its memorization score (there in SSCD copy-detection features).
- :func:`novelty_w1`: Wasserstein-1 distance between the set's d1 / d2 values and those of
  the held-out targets: 0 when the set is exactly as novel as real new members.
- :func:`source_share`: share of the few-shot targets that seeded at least one discovered
  latent (read from the sample names ``discovered_00000<-a+b@w=0.412``).

Feature spaces: a user TorchScript model when ``stats.feature_extractor`` names one;
otherwise the pixels (log10 of the physical values for fields, physical values for
galaxies) for d1/d2, and the same pixels centred on the few-shot targets' mean map for the
cosine, so that the part every map shares (a dark sky, the mean G0 level) does not make
any two maps look alike. The stand-in is not SSCD: its 0.6 is a correlation of maps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .neighbours import _features
from .neighbours import max_cosine_similarity as max_cosine_similarity
from .onepoint import _log10_values, wasserstein1

#: What the tables call the discovered samples (their file is ``results/{dataset}/samples.h5``).
DISCOVERED_SET = "discovered"
NEAR_COPY_THRESHOLD = 1.0 / 3.0
MSCORE_THRESHOLD = 0.6
_SOURCE = re.compile(r"<-(?P<sources>.+?)(@|$)")


def table_set_name(name: str) -> str:
    """The name a set has in every table: the workflow's ``samples`` are the ``discovered`` set."""
    return DISCOVERED_SET if name == "samples" else name


def pixel_features(kind: str) -> Callable | None:
    """The documented stand-in feature space of the novelty and reproducibility statistics when
    no feature model is given: log10 values of fields, flattened (None: the pixels themselves)."""
    return (lambda x: _log10_values(x).reshape(len(x), -1)) if kind == "field" else None


def near_copy_share(ratios, threshold: float = NEAR_COPY_THRESHOLD) -> float:
    """Share of samples whose d1 / d2 is below ``threshold`` (Lowe's ratio test; see module doc)."""
    values = ratios["ratio"] if hasattr(ratios, "columns") else ratios
    values = np.asarray(values, dtype=np.float64).ravel()
    return float(np.mean(values < threshold)) if values.size else float("nan")


def mscore(max_cosine, threshold: float = MSCORE_THRESHOLD) -> float:
    """Share of samples whose highest cosine similarity to a few-shot target exceeds ``threshold``."""
    values = np.asarray(max_cosine, dtype=np.float64).ravel()
    return float(np.mean(values > threshold)) if values.size else float("nan")


def novelty_w1(ratios, heldout_ratios) -> float:
    """W1 between a set's d1 / d2 values and the held-out targets' (0: as novel as real new members)."""
    a, b = np.asarray(ratios, dtype=np.float64).ravel(), np.asarray(heldout_ratios, dtype=np.float64).ravel()
    return wasserstein1(a, b) if a.size and b.size else float("nan")


def sources_of(name: str) -> list[str]:
    """The few-shot targets a discovered sample was made from, from its name (``<-a+b@w=...``)."""
    match = _SOURCE.search(str(name))
    return match.group("sources").split("+") if match else []


def source_share(names: Sequence[str], target_names: Sequence[str]) -> float:
    """Share of the few-shot targets that seeded at least one of ``names``; NaN when none says."""
    seeded = {s for n in names for s in sources_of(n)}
    if not seeded:
        return float("nan")
    return len(seeded & set(target_names)) / max(len(target_names), 1)


def novelty_table(sets: Mapping[str, np.ndarray], references, reference_names: Sequence[str],
                  names: Mapping[str, Sequence[str]] | None = None, features: Callable | None = None,
                  center_cosine: bool = True):
    """One row per sample of every set: ``set, name, d1, d2, nearest, ratio, max_cosine``.

    ``nearest`` is the name of the nearest few-shot target; ``features`` give both the
    d1 / d2 distances and ``max_cosine``, centred on the references' mean feature vector
    when ``center_cosine`` (pixel stand-ins; not for a learned extractor).
    """
    from .sources import as_source
    from .summaries import NoveltyReferences, summarize

    refs = NoveltyReferences(_features(references, features), features, center_cosine)
    return novelty_frames({set_name: summarize(as_source(data, names=(names or {}).get(set_name)), novelty=refs)
                           for set_name, data in sets.items()}, reference_names)


NOVELTY_COLUMNS = ["set", "name", "d1", "d2", "nearest", "ratio", "max_cosine"]


def novelty_frames(summaries: Mapping, reference_names: Sequence[str]):
    """The novelty table of :func:`~discoverydiff.stats.summaries.summarize`'s per-set novelty rows."""
    import pandas as pd

    frames = [pd.DataFrame({"set": set_name, "name": list(summary.names or [f"{set_name}_{i}" for i in
                                                                             range(summary.n)]),
                            "d1": summary["d1"], "d2": summary["d2"],
                            "nearest": [reference_names[i] for i in summary["nearest_index"]],
                            "ratio": summary["ratio"], "max_cosine": summary["max_cosine"]})
              for set_name, summary in summaries.items()]
    return pd.concat(frames, ignore_index=True)[NOVELTY_COLUMNS] if frames else pd.DataFrame(columns=NOVELTY_COLUMNS)


def bootstrap_interval(statistic: Callable[[np.ndarray], dict], n: int, n_boot: int = 200, seed: int = 0,
                       level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of every value ``statistic(index)`` returns, over a set of n.

    ``statistic`` maps an index array (rows of the set, drawn with replacement) to a dict of
    named values; the interval of each is the (1 - level) / 2 and (1 + level) / 2 quantiles
    over ``n_boot`` draws (NaN draws ignored). Only the judged set is resampled; the real
    targets it is compared with stay fixed.
    """
    if n < 1 or n_boot < 1:
        return {}
    rng = np.random.default_rng(seed)
    draws: dict[str, list] = {}
    for _ in range(n_boot):
        for key, value in statistic(rng.integers(0, n, n)).items():
            draws.setdefault(key, []).append(value)
    q = ((1.0 - level) / 2.0, (1.0 + level) / 2.0)
    out = {}
    for key, values in draws.items():
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        out[key] = tuple(float(x) for x in np.quantile(v, q)) if v.size else (float("nan"), float("nan"))
    return out


def paired_reproducibility(set_a, names_a: Sequence[str], set_b, names_b: Sequence[str],
                           features: Callable | None = None, center: bool = True, threshold: float = MSCORE_THRESHOLD,
                           n_boot: int = 200, seed: int = 0) -> dict | None:
    """rpscore of two sets decoded from the same initial noise, rows paired by name.

    Base-model and fine-tuned samples are both drawn by ``engine.sample_from_noise`` with the
    run's seed, so ``sample_00007`` of each starts from the same noise. The rpscore (Zhang et
    al. 2024) is the share of pairs whose feature cosine similarity exceeds ``threshold``
    (:func:`~discoverydiff.stats.neighbours.paired_cosine_similarity`; ``center``: each
    vector's own mean removed, for pixel stand-ins). Returns ``value``, ``n`` (pairs),
    ``mean_similarity``, ``ci_low``, ``ci_high``; None when no names pair. ``set_a`` and ``set_b``
    are arrays or sources (:mod:`.sources`), read a block of pairs at a time.
    """
    from .neighbours import paired_cosine_similarity
    from .sources import as_source, block_rows

    index_b = {name: i for i, name in enumerate(names_b)}
    pairs = [(i, index_b[name]) for i, name in enumerate(names_a) if name in index_b]
    if not pairs:
        return None
    rows_a, rows_b = (np.array(p) for p in zip(*pairs))
    src_a, src_b = as_source(set_a), as_source(set_b)
    size = block_rows(src_a.map_shape)  # pairs per block: both sets are read a block at a time
    similarity = np.concatenate([
        paired_cosine_similarity(src_a.rows(rows_a[i:i + size])[0], src_b.rows(rows_b[i:i + size])[0], features,
                                 center) for i in range(0, len(rows_a), size)])
    interval = bootstrap_interval(lambda idx: {"v": float(np.mean(similarity[idx] > threshold))}, len(similarity),
                                  n_boot, seed).get("v", (np.nan, np.nan))
    return {"value": float(np.mean(similarity > threshold)), "n": len(similarity),
            "mean_similarity": float(np.mean(similarity)), "ci_low": interval[0], "ci_high": interval[1]}
