"""What each compared set cost: UNet forward passes, training steps and seconds (``compute.csv``).

A set that was selected from more candidates, or made by a fine-tuned model, used more of the
base model than one drawn once. The comparison is only fair when that is stated beside it, so
this table counts, per set, from the settings recorded in the files that made it:

- ``unet_forwards``: evaluations of the denoiser on one image (an inversion of N images in S
  steps is N (S - 1); a decode N S; a screening of C candidates with P-step previews C P, plus
  the few-shot targets' previews when they are not compared as maps; the spectral calibration's
  decodes of the kept latents);
- ``training_steps`` and ``training_images``: optimizer steps of fine-tuning, and images seen;
- ``seconds``: the wall time of the rules in ``rules`` (Snakemake's benchmark files; NaN where a
  rule left none), each counted whole, so rules shared by several sets count for each.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

COLUMNS = ["set", "unet_forwards", "training_steps", "training_images", "seconds", "rules", "note"]


def _seconds(paths) -> float:
    """Summed wall time of Snakemake benchmark files (NaN when none exists)."""
    import pandas as pd

    total, found = 0.0, False
    for path in paths:
        for file in sorted(Path(path).parent.glob(Path(path).name)):
            total += float(pd.read_csv(file, sep="\t")["s"].iloc[-1])
            found = True
    return total if found else float("nan")


def _rows(path) -> int:
    from ..store import row_index

    return len(row_index(path).rows)


def _decode_forwards(path, n: int | None = None) -> int:
    from ..store import read_attrs

    return int(n if n is not None else _rows(path)) * int(read_attrs(path)["n_steps"])


def _screening_forwards(discovered_path, n_targets: int) -> int:
    """Forwards of discovery's screening of the candidates (and of the targets' previews)."""
    from ..store import read_attrs

    acceptance = read_attrs(discovered_path).get("acceptance") or {}
    screening = acceptance.get("screening") or {}
    attrs = read_attrs(discovered_path)
    # the spectral calibration decodes the kept latents once more (rule discover)
    calibration = _rows(discovered_path) * int(attrs["n_steps"]) if acceptance.get("spectral_calibration") else 0
    if int(screening.get("oversample", 1)) <= 1:
        return calibration
    steps = int(screening["preview_steps"])
    targets = 0 if screening.get("full_decodes") else n_targets
    return (int(screening["n_candidates"]) + targets) * steps + calibration


def compute_table(results_dir, base_dir, sets, n_samples: int):
    """One row per compared set (``sets``: table names, e.g. ``discovered``, ``baseline_selected``) of
    the dataset whose results are in ``results_dir`` (``base_dir``: the base model's results)."""
    import pandas as pd

    from ..store import read_attrs

    root, base = Path(results_dir), Path(base_dir)
    bench, base_bench = root / "benchmarks", base / "benchmarks"
    latents = read_attrs(root / "latents.h5")
    n_fewshot = _rows(root / "latents.h5")
    inversion = n_fewshot * (int(latents["n_steps"]) - 1)
    rows = []
    for name in sets:
        row = {"set": name, "unet_forwards": 0, "training_steps": 0, "training_images": 0, "note": ""}
        if name in ("discovered", "discovered_prior", "discovered_unscreened"):
            file = {"discovered": "samples.h5", "discovered_prior": "discovered_prior.h5",
                    "discovered_unscreened": "discovered_unscreened.h5"}[name]
            screened = {"discovered": root / "discovered_latents.h5",
                        "discovered_prior": root / "controls" / "prior_latents.h5"}.get(name)
            row["unet_forwards"] = inversion + _decode_forwards(root / file) + (
                _screening_forwards(screened, n_fewshot) if screened is not None else 0)
            rules = {"discovered": ["invert_*", "discover", "sample_discovered_*"],
                     "discovered_prior": ["invert_*", "discover_prior", "sample_prior_*"],
                     "discovered_unscreened": ["invert_*", "sample_unscreened_*"]}[name]
            if name == "discovered_unscreened":
                row["note"] = "drawn from discovery's accepted candidates (their geometric search costs no forwards)"
        elif name in ("baseline_samples", "baseline_selected"):
            candidates = root / "baseline_candidates.h5"
            finetune = read_attrs(candidates).get("finetune") or {}
            row["training_steps"] = int(finetune.get("steps", 0))
            row["training_images"] = row["training_steps"] * int(finetune.get("batch_size", 0))
            draws = _rows(candidates) if name == "baseline_selected" else n_samples
            row["unet_forwards"] = _decode_forwards(candidates, draws)
            rules = ["finetune", "baseline_sets"]
            row["note"] = f"{draws} draws of the fine-tuned model" + (
                "; seconds include all the draws of rule finetune" if name == "baseline_samples" else "")
        elif name == "base_samples":
            row["unet_forwards"] = _decode_forwards(base / "samples.h5", n_samples)
            rules = []
            row["note"] = f"the first {n_samples} of the base model's samples; seconds: rule sample_base"
            row["seconds"] = _seconds([base_bench / "sample_base_*.tsv"])
        else:
            continue
        row["rules"] = " ".join(rules)
        if "seconds" not in row:
            row["seconds"] = _seconds([bench / f"{rule}.tsv" for rule in rules])
        rows.append(row)
    log.info("compute: %s", {r["set"]: r["unet_forwards"] for r in rows})
    return pd.DataFrame(rows, columns=COLUMNS)


__all__ = ["COLUMNS", "compute_table"]
