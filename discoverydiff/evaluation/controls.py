"""Controls of the comparison: what the discovered set is measured against, given the same selection.

Discovery does not only propose latents: it screens ``oversample`` candidates per kept sample
against the few-shot maps. A win over a baseline that got no such selection could be the
selection's alone. So each control is a set of the same size, in the same tables:

- ``baseline_selected`` (:func:`baseline_sets`): the fine-tuned model sampled ``oversample`` times
  as often, screened by the same selection against the few-shot maps as the discovered candidates;
  ``baseline_samples`` is the first ``n_samples`` of the same draws, unselected;
- ``discovered_unscreened`` (:func:`unscreened_latents`): a random draw of as many of discovery's
  accepted candidates, before screening;
- ``discovered_prior``: the paper's ``prior`` scheme with the same budget (rule ``discover_prior``,
  :func:`prior_config`).
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import ConfigError, InputError

log = logging.getLogger(__name__)


def prior_config(discovery_cfg: dict) -> dict:
    """The discovery section of the ``discovered_prior`` control: the ``prior`` scheme (slerp from a
    target towards a draw of the Gaussian fitted to the targets, every slerp weight) with the same
    number of samples, candidates and screening as the discovered set."""
    cfg = {key: value for key, value in discovery_cfg.items() if key not in ("min_weight", "max_per_pair")}
    cfg["scheme"] = "prior"
    return cfg


def unscreened_latents(discovered_path, out_path, n_samples: int, seed: int = 0):
    """A random draw (``seed``) of ``n_samples`` of the candidates discovery accepted, kept or screened
    out, in the order they were accepted: the ``discovered_unscreened`` control's latents."""
    import h5py

    from ..store import TensorFileWriter, read_attrs, read_tensor_file

    kept = read_tensor_file(discovered_path)
    record = kept.attrs.get("acceptance") or {}
    screening = record.get("screening") or {}
    latents, names = kept.x, list(kept.names)
    if screening.get("oversample", 1) > 1:
        with h5py.File(discovered_path, "r") as h5:
            if "screened_out" not in h5:
                raise InputError(discovered_path, "was screened but holds no 'screened_out' latents")
            latents = np.concatenate([latents, h5["screened_out"][()]])
        names = names + list(screening.get("screened_out_names", []))
        if len(names) != len(latents):
            raise InputError(discovered_path, f"names {len(names)} candidates in its record for {len(latents)} latents")
    if n_samples > len(latents):
        raise ConfigError(f"the unscreened control draws {n_samples} of {len(latents)} accepted candidates")
    order = np.argsort([_accepted_index(name) for name in names], kind="stable")  # discovery's own order
    pick = np.sort(np.random.default_rng([int(seed), 17]).choice(len(latents), n_samples, replace=False))
    rows = order[pick]
    attrs = {k: v for k, v in read_attrs(discovered_path).items() if k not in ("acceptance",)}
    # decoded as the discovered latents are: with the spectral calibration of their record
    attrs.update({"control": "discovered_unscreened", "drawn_from": str(discovered_path), "draw_seed": int(seed),
                  "n_candidates": int(len(latents)),
                  "acceptance": {"spectral_calibration": record.get("spectral_calibration")}})
    with TensorFileWriter(out_path, (n_samples, *latents.shape[1:]), "latents", attrs) as out:
        out.write(0, latents[rows], [names[i] for i in rows])
    log.info("drew %d of %d accepted candidates (before screening) into %s", n_samples, len(latents), out_path)
    return out_path


def _accepted_index(name: str) -> int:
    """The acceptance order of a discovered latent from its name (``discovered_00012<-...``)."""
    head = str(name).split("<-", 1)[0]
    digits = head.rsplit("_", 1)[-1]
    return int(digits) if digits.isdigit() else 0


def baseline_sets(candidates_path, tensors_path, samples_path, selected_path, screening_path, n_samples: int,
                  screen_cfg: dict | None, seed: int = 0):
    """The fine-tuned baseline, unselected and selected, from its ``n_samples x oversample`` draws.

    ``samples_path`` gets the first ``n_samples`` draws (``baseline_samples``); ``selected_path`` the
    ``n_samples`` that the discovered set's selection (``screen_cfg``: ``select`` each or set,
    ``restarts``; statistics of the full samples against the few-shot maps of ``tensors_path``)
    keeps (``baseline_selected``); ``screening_path`` every draw's statistics and verdict.
    """
    import pandas as pd

    from ..discovery.screening import TABLE_COLUMNS, screen_images
    from ..physical import record_from_attrs
    from ..store import TensorFileWriter, read_attrs, read_tensor_file, write_csv_atomic

    screen_cfg = dict(screen_cfg or {})
    draws = read_tensor_file(candidates_path)
    if len(draws.names) < n_samples:
        raise InputError(candidates_path, f"holds {len(draws.names)} baseline draws; {n_samples} are needed")
    attrs = read_attrs(candidates_path)
    keep = np.zeros(len(draws.names), dtype=bool)
    keep[:n_samples] = True
    table, record, selection = pd.DataFrame(columns=list(TABLE_COLUMNS)), None, None
    if len(draws.names) > n_samples:
        fewshot = read_tensor_file(tensors_path, split="fewshot")
        record = record_from_attrs(fewshot.attrs, tensors_path) if fewshot.attrs.get("normalization") else None
        restarts = 20 if screen_cfg.get("restarts") is None else int(screen_cfg["restarts"])
        keep, table, selection = screen_images(draws.x, fewshot.x, n_samples, draws.names, fewshot.names,
                                               select_by=screen_cfg.get("select") or "each", record=record, seed=seed,
                                               restarts=restarts, score_by=screen_cfg.get("score") or "moments")
    first = np.arange(n_samples)
    for path, rows, name in ((samples_path, first, "baseline_samples"),
                             (selected_path, np.flatnonzero(keep), "baseline_selected")):
        out_attrs = {**attrs, "control": name, "n_draws": len(draws.names),
                     "selection": None if name == "baseline_samples" else
                     {"select": screen_cfg.get("select") or "each", "score": screen_cfg.get("score") or "moments",
                      "reference": "fewshot maps",
                      "set_selection": selection}}
        with TensorFileWriter(path, (len(rows), *draws.x.shape[1:]), "samples", out_attrs) as out:
            out.write(0, draws.x[rows], [draws.names[i] for i in rows])
    write_csv_atomic(table, screening_path)
    log.info("baseline: first %d of %d draws, and the %d the selection kept", n_samples, len(draws.names),
             int(keep.sum()))
    return samples_path, selected_path


__all__ = ["baseline_sets", "prior_config", "unscreened_latents"]
