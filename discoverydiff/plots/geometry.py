"""Figure 2: latent geometry of the targets and ID latents, and the acceptance windows of discovery."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd

from ..errors import InputError
from ..store import read_tensor_file
from .style import _SETS, _STYLE, DOUBLE_COLUMN_IN, FigureFiles, _fraction_hist, _new_figure, _save, _set_style


def _pair_angles_excluding_self(points, refs, exclude_self: bool, max_pairs: int = 2000):
    """Angles (deg) at every point between pairs of refs (not containing the point itself)."""
    import torch

    from ..discovery import angles_at_points

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
    from ..discovery import CRITERIA, angles_at_origin, pairwise_distances

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
