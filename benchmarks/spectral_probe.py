"""Why decoded mixtures of inverted latents have flatter power spectra than the real maps: measurements.

Every experiment reads one field dataset's workflow results (``tensors.h5``, ``latents.h5``) and
the base model's inverted samples, decodes sets of latents with the dataset's model and DDIM
settings, and measures each decoded set against the held-out maps, which nothing here reads
otherwise, with the workflow's own statistics (:func:`discoverydiff.stats.compare_sets`,
``target_keys=["heldout"]``)::

    python benchmarks/spectral_probe.py diagnose results/outside_field --out DIR
    python benchmarks/spectral_probe.py latent results/outside_field --out DIR
    python benchmarks/spectral_probe.py perturb results/outside_field --out DIR
    python benchmarks/spectral_probe.py variants results/outside_field --out DIR --seeds 0 1 2 3 4

- ``diagnose``: no discovery, no screening: the same random pairs of few-shot targets
  (weights uniform in [0.4, 0.6]) mixed as maps (the exact mixture) and as latents, decoded in
  several ways (steps, eta, norm correction, t0, frequency-split mixing, spectral matching);
  round trips of the targets; the slope as the mixing weight goes from 0 to 0.5.
- ``perturb``: each target's latent moved a little towards another target, an ID latent, white
  noise, or noise of only large or only small scales, decoded; per-k spectra of every set.
- ``spread``: slope differences between random 16-map real sets and the rest.
- ``latent``: no decoding: radial power spectra of target latents, of their mixtures and of the
  base model's inverted samples, and how much of each wavenumber is the image (coherence).
- ``variants``: the workflow's discovery and default screening end to end for each setting and
  seed, with the novelty numbers (near-copy share, W1 of d1/d2) and k-NN recall, each set also
  calibrated (:func:`discoverydiff.spectral.calibrate_spectrum`, suffix ``+cal``).

Results are CSV files in ``--out``; benchmarks/README.md ("Spectral flattening") has the numbers.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from discoverydiff.diffusion import DDIMSettings, ddim_generate, ddim_invert, prepare_eps_fn
from discoverydiff.discovery import discover
from discoverydiff.fidelity import image_summary_features
from discoverydiff.mixing import pair_mixtures
from discoverydiff.models import load_model
from discoverydiff.physical import record_from_attrs
from discoverydiff.spectral import (
    calibrate_spectrum,
    latent_radial_power,
    radial_bin_index,
)
from discoverydiff.stats import compare_sets
from discoverydiff.stats.power import fit_power_law, radial_power_spectrum, slope_fit_range
from discoverydiff.stats.sources import RealMaps
from discoverydiff.store import read_attrs, read_tensor_file

log = logging.getLogger("spectral_probe")

#: Statistics of compare_sets kept in the tables.
KEEP = {"power_slope_difference": "slope_diff", "power_log10_distance": "spec_dist", "pdf_w1_log10": "pdf_w1",
        "log10_std_difference": "std_diff", "near_copy_share": "near_copy", "novelty_w1": "novelty_w1",
        "recall": "recall", "precision": "precision"}


@dataclass
class Probe:
    """One dataset's maps, latents and model, with decode / invert / measure."""

    results: Path
    record: object
    fewshot: np.ndarray  # (N, C, H, W) model space
    fewshot_phys: np.ndarray
    heldout_phys: np.ndarray
    latents: np.ndarray  # inverted few-shot targets (N, C, H, W)
    ids: np.ndarray  # inverted base-model samples
    base_samples: np.ndarray  # the base model's samples (model space)
    model: object
    eps_fn: object
    t0: int
    n_steps: int
    batch: int = 16

    @classmethod
    def load(cls, results, model_path="resources/models/demo_unet32", batch=16, reference="heldout"):
        """``reference``: the split of tensors.h5 the sets are judged against (the unseen maps)."""
        results = Path(results)
        tensors = results / "tensors.h5"
        record = record_from_attrs(read_attrs(tensors), tensors)
        lat = read_tensor_file(results / "latents.h5")
        ids = read_tensor_file(Path("results/base_model/id_latents.h5"))
        fewshot = read_tensor_file(tensors, split="fewshot")
        phys = {"fewshot": RealMaps(tensors, "fewshot", record).array(),
                "heldout": RealMaps(tensors, reference, record).array()}
        base = read_tensor_file(Path("results/base_model/samples.h5")).x
        shape = lat.x.shape
        model = load_model({"source": "trained", "path": model_path, "resolution": shape[-1], "channels": shape[1]})
        eps_fn = prepare_eps_fn(model, torch.device("cpu"))
        return cls(results, record, fewshot.x.astype(np.float32), phys["fewshot"], phys["heldout"],
                   lat.x.astype(np.float32), ids.x.astype(np.float32), base, model, eps_fn, int(lat.attrs["t0"]),
                   int(lat.attrs["n_steps"]), batch)

    def decode(self, z, steps=None, t0=None, eta=0.0, seed=0) -> np.ndarray:
        settings = DDIMSettings(int(t0 or self.t0), int(steps or self.n_steps), float(eta))
        out = []
        for start in range(0, len(z), self.batch):
            part = torch.from_numpy(np.ascontiguousarray(z[start:start + self.batch], dtype=np.float32))
            gens = [torch.Generator().manual_seed(seed * 100_003 + start + i) for i in range(len(part))]
            out.append(ddim_generate(self.eps_fn, part, self.model.alpha_bar, settings, gens).numpy())
        return np.clip(np.concatenate(out), -1, 1)

    def invert(self, x, steps=None, t0=None) -> np.ndarray:
        settings = DDIMSettings(int(t0 or self.t0), int(steps or self.n_steps), 0.0)
        out = []
        for start in range(0, len(x), self.batch):
            part = torch.from_numpy(np.ascontiguousarray(x[start:start + self.batch], dtype=np.float32))
            out.append(ddim_invert(self.eps_fn, part, self.model.alpha_bar, settings).numpy())
        return np.concatenate(out)

    def physical(self, x) -> np.ndarray:
        return self.record.to_physical(np.clip(x, -1, 1))

    def measure(self, sets: dict, with_knn: bool = True) -> pd.DataFrame:
        """compare_sets of model-space sets (and the few-shot maps) against the held-out maps, one row per set."""
        record = self.record
        phys = {name: self.physical(x) for name, x in sets.items()}
        phys["fewshot_maps"] = self.fewshot_phys
        phys["heldout"] = self.heldout_phys
        table = compare_sets({"fewshot": self.fewshot_phys, "heldout": self.heldout_phys}, phys, "field",
                             target_keys=["heldout"], heldout_key="heldout", n_boot=0,
                             precision_features=(lambda x: image_summary_features(record.to_normalized(x)[0]))
                             if with_knn else None, standardize_precision=True)
        table = table[table["statistic"].isin(KEEP)]
        wide = table.pivot_table(index="set", columns="statistic", values="value").rename(columns=KEEP)
        slopes = table[table["statistic"] == "power_slope_difference"].set_index("set")["set_value"]
        wide["slope"] = slopes
        wide["n"] = table.groupby("set")["n_set"].first()
        return wide.drop(index="heldout").reset_index()


def match_radial_power(latents, reference_power) -> np.ndarray:
    """Latents (N, C, H, W) with each one's radial power (:func:`latent_radial_power` of it alone) set to
    ``reference_power`` in every bin k > 0: one real gain per bin, the same for every channel and mode."""
    z = np.asarray(latents, dtype=np.float64)
    index = radial_bin_index(z.shape[-2:])
    own = np.stack([latent_radial_power(one) for one in z])  # (N, K)
    gain = np.sqrt(np.asarray(reference_power)[None, :] / np.where(own > 0, own, np.inf))
    gain[:, 0] = 1.0
    return np.real(np.fft.ifft2(np.fft.fft2(z) * gain[:, index][:, None])).astype(np.float32)


def pooled_slope(maps_log10) -> float:
    """Slope of the mean radial power spectrum of log10 maps (N, H, W), over the comparison's fit range."""
    k, p = radial_power_spectrum(np.asarray(maps_log10, dtype=np.float64), boxlength=1.0)[:2]
    return float(fit_power_law(k, np.atleast_2d(p).mean(0), *slope_fit_range(np.shape(maps_log10)[-2:]))[0])


def real_spread(probe: Probe, size: int = 16, draws: int = 500, seed: int = 0) -> dict:
    """Slope differences between a random ``size``-map real set and the held-out maps it leaves out."""
    maps = np.log10(np.concatenate([probe.fewshot_phys, probe.heldout_phys])[:, 0])
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(draws):
        order = rng.permutation(len(maps))
        diffs.append(pooled_slope(maps[order[:size]]) - pooled_slope(maps[order[size:]]))
    diffs = np.abs(diffs)
    return {"real_abs_slope_diff_median": float(np.median(diffs)), "real_abs_slope_diff_p95": float(
        np.percentile(diffs, 95)), "n_maps": len(maps), "size": size}


def random_pairs(n_targets: int, n: int, lo: float, hi: float, seed: int):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_targets, n)
    b = (a + rng.integers(1, n_targets, n)) % n_targets
    return a, b, rng.uniform(lo, hi, n)


def latent_mixtures(latents, a, b, w, rescale: bool = True) -> np.ndarray:
    """PairCandidates (the workflow's construction) of latents; ``rescale=False``: plain slerp, no norm fix."""
    flat = torch.from_numpy(latents.reshape(len(latents), -1).astype(np.float64))
    if not rescale:
        from discoverydiff.discovery import slerp

        return slerp(flat[torch.as_tensor(a)], flat[torch.as_tensor(b)], torch.as_tensor(w)).numpy().reshape(
            (len(a),) + latents.shape[1:]).astype(np.float32)
    return pair_mixtures(latents, a, b, w).astype(np.float32)


def split_mixture(latents, a, b, w, k_cut: float) -> np.ndarray:
    """Mix below ``k_cut`` (cycles per pixel) as the pairs scheme does; keep parent a's latent above it."""
    mix = latent_mixtures(latents, a, b, w)
    k = np.hypot(np.fft.fftfreq(latents.shape[-2])[:, None], np.fft.fftfreq(latents.shape[-1])[None, :])
    high = k > k_cut
    f_mix, f_a = np.fft.fft2(mix), np.fft.fft2(latents[a])
    f_mix[..., high] = f_a[..., high]
    return np.real(np.fft.ifft2(f_mix)).astype(np.float32)


def dc_linear(mixtures, latents, a, b, w) -> np.ndarray:
    """Mixtures with each channel's mean (the latent's k = 0 mode) set to the linear mix of the parents' means."""
    means = latents.mean(axis=(2, 3), keepdims=True)
    wanted = (1 - w)[:, None, None, None] * means[a] + w[:, None, None, None] * means[b]
    return (mixtures - mixtures.mean(axis=(2, 3), keepdims=True) + wanted).astype(np.float32)


def diagnose(probe: Probe, out: Path, n_pairs: int = 48, seed: int = 0) -> pd.DataFrame:
    a, b, w = random_pairs(len(probe.latents), n_pairs, 0.4, 0.6, seed)
    rows = []

    def add(name, maps, note=""):
        rows.append({"variant": name, "note": note, "maps": maps})
        log.info("decoded %s", name)

    add("fewshot_roundtrip", probe.decode(probe.latents), "invert + decode of the targets, default steps")
    add("pixel_mixture", pair_mixtures(probe.fewshot, a, b, w).astype(np.float32), "the pairs construction on maps")
    mix = latent_mixtures(probe.latents, a, b, w)
    add("latent_mixture", probe.decode(mix), "pairs construction on latents, decoded (the workflow)")
    add("latent_mixture_dc_linear", probe.decode(dc_linear(mix, probe.latents, a, b, w)),
        "pairs mixtures, channel means mixed linearly")
    add("latent_mixture_no_rescale", probe.decode(latent_mixtures(probe.latents, a, b, w, rescale=False)),
        "plain slerp of the two latents")
    add("latent_mixture_200_steps", probe.decode(mix, steps=200), "same latents, decoded with 200 steps")
    add("latent_mixture_eta_0.5", probe.decode(mix, eta=0.5, seed=seed), "stochastic decode")
    add("latent_mixture_eta_1", probe.decode(mix, eta=1.0, seed=seed), "stochastic decode (DDPM-like)")
    add("inverted_pixel_mixture", probe.decode(probe.invert(pair_mixtures(probe.fewshot, a, b, w))),
        "round trip of the exact mixture")
    ref = latent_radial_power(probe.latents)
    add("latent_mixture_matched", probe.decode(match_radial_power(mix, ref)),
        "mixture latents' radial spectrum set to the targets' latents' mean")
    for k_cut in (0.125, 0.25):
        add(f"split_mixture_k{k_cut}", probe.decode(split_mixture(probe.latents, a, b, w, k_cut)),
            f"mixed below {k_cut} cycles/px, parent a above")
    for t0 in (200, 400, 800):
        lat = probe.invert(probe.fewshot, t0=t0)
        add(f"t0_{t0}_roundtrip", probe.decode(lat, t0=t0), f"targets inverted and decoded at t0 {t0}")
        add(f"t0_{t0}_latent_mixture", probe.decode(latent_mixtures(lat, a, b, w), t0=t0),
            f"pairs mixtures at t0 {t0}")
    table = probe.measure({r["variant"]: r["maps"] for r in rows})
    table["note"] = table["set"].map({r["variant"]: r["note"] for r in rows})
    # the slope as the mixing weight grows, same pairs (w = 0 is the target a's round trip)
    scan = []
    for weight in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5):
        wv = np.full(n_pairs, weight)
        lat_maps = probe.decode(latent_mixtures(probe.latents, a, b, wv)) if weight > 0 else probe.decode(
            probe.latents[a])
        pix_maps = pair_mixtures(probe.fewshot, a, b, wv) if weight > 0 else probe.fewshot[a]
        held = pooled_slope(np.log10(probe.heldout_phys[:, 0]))
        scan.append({"w": weight,
                     "latent_slope_diff": pooled_slope(np.log10(probe.physical(lat_maps)[:, 0])) - held,
                     "pixel_slope_diff": pooled_slope(np.log10(probe.physical(pix_maps)[:, 0])) - held})
    pd.DataFrame(scan).to_csv(out / "weight_scan.csv", index=False)
    table.to_csv(out / "diagnose.csv", index=False)
    return table


def band_noise(shape, lo: float, hi: float, seed: int) -> np.ndarray:
    """White Gaussian noise keeping only the modes with lo <= |k| < hi (cycles per pixel)."""
    noise = np.random.default_rng(seed).standard_normal(shape)
    k = np.hypot(np.fft.fftfreq(shape[-2])[:, None], np.fft.fftfreq(shape[-1])[None, :])
    f = np.fft.fft2(noise)
    f[..., (k < lo) | (k >= hi)] = 0
    return np.real(np.fft.ifft2(f)).astype(np.float32)


def towards(z, other, w) -> np.ndarray:
    """Slerp of each latent towards ``other`` (same shape) rescaled to z's norm, at weight w."""
    from discoverydiff.discovery import slerp

    flat, o = torch.from_numpy(z.reshape(len(z), -1).astype(np.float64)), torch.from_numpy(
        other.reshape(len(z), -1).astype(np.float64))
    o = o / o.norm(dim=1, keepdim=True) * flat.norm(dim=1, keepdim=True)
    return slerp(flat, o, w).numpy().reshape(z.shape).astype(np.float32)


def perturb(probe: Probe, out: Path, seed: int = 0) -> pd.DataFrame:
    """Decoded targets whose latents moved a little towards something else: another target, an ID latent,
    white noise, or noise of one band of wavenumbers; with the per-k spectra of every decoded set."""
    z = probe.latents
    n = len(z)
    rng = np.random.default_rng(seed)
    other = (np.arange(n) + rng.integers(1, n, n)) % n
    ids = probe.ids[rng.integers(0, len(probe.ids), n)]
    sets = {"roundtrip": probe.decode(z)}
    for w in (0.05, 0.1, 0.3):
        sets[f"white_noise_w{w}"] = probe.decode(towards(z, band_noise(z.shape, 0, 1, seed), w))
    sets["other_target_w0.1"] = probe.decode(towards(z, z[other], 0.1))
    sets["id_latent_w0.1"] = probe.decode(towards(z, ids, 0.1))
    sets["lowk_noise_w0.1"] = probe.decode(towards(z, band_noise(z.shape, 0, 0.125, seed), 0.1))
    sets["highk_noise_w0.1"] = probe.decode(towards(z, band_noise(z.shape, 0.25, 1, seed), 0.1))
    a, b, w = random_pairs(n, 48, 0.4, 0.6, seed)
    sets["latent_mixture"] = probe.decode(latent_mixtures(z, a, b, w))
    sets["pixel_mixture"] = pair_mixtures(probe.fewshot, a, b, w).astype(np.float32)
    table = probe.measure(sets, with_knn=False)
    table.to_csv(out / "perturb.csv", index=False)
    spectra = {"heldout": np.log10(probe.heldout_phys[:, 0]), "fewshot": np.log10(probe.fewshot_phys[:, 0])}
    spectra.update({name: np.log10(probe.physical(x)[:, 0]) for name, x in sets.items()})
    rows = []
    for name, maps in spectra.items():
        k, p = radial_power_spectrum(maps, boxlength=1.0)[:2]
        rows += [{"set": name, "k": float(kk), "power": float(pp)} for kk, pp in zip(k, np.atleast_2d(p).mean(0))]
    pd.DataFrame(rows).to_csv(out / "perturb_spectra.csv", index=False)
    log.info("slopes: %s", excess_slopes(probe, out))
    return table


def excess_slopes(probe: Probe, out: Path) -> dict:
    """Log-log slopes, over the comparison's fit range, of the power the decoded latent mixtures have
    beyond the exact mixtures (``perturb_spectra.csv``), of the base model's samples (through the
    record) and of the held-out maps."""
    spectra = pd.read_csv(out / "perturb_spectra.csv").pivot(index="k", columns="set", values="power")
    k = spectra.index.to_numpy()
    base = np.log10(probe.physical(probe.base_samples)[:, 0])
    k_b, p_b = radial_power_spectrum(base, boxlength=1.0)[:2]
    lo, hi = slope_fit_range(base.shape[1:])

    def slope(kk, pp):
        sel = (kk >= lo) & (kk <= hi)
        return float(np.polyfit(np.log10(kk[sel]), np.log10(pp[sel]), 1)[0])

    excess = (spectra["latent_mixture"] - spectra["pixel_mixture"]).to_numpy()
    result = {"excess_latent_minus_pixel_mixture": slope(k, excess),
              "base_samples": slope(k_b, np.atleast_2d(p_b).mean(0)),
              "heldout": slope(k, spectra["heldout"].to_numpy())}
    (out / "excess.json").write_text(json.dumps(result, indent=2))
    return result


def latent_spectra(probe: Probe, out: Path, n_pairs: int = 256, seed: int = 0) -> pd.DataFrame:
    """Radial power of latents per wavenumber bin: targets, mixtures, ID latents, white noise; and the
    coherence of a target's latent with its image (share of the latent's power that is the image)."""
    a, b, w = random_pairs(len(probe.latents), n_pairs, 0.4, 0.6, seed)
    mix = latent_mixtures(probe.latents, a, b, w)
    noise = np.random.default_rng(seed).standard_normal(probe.latents.shape).astype(np.float32)
    k_t, p_t = latent_radial_power(probe.latents, return_k=True)
    table = pd.DataFrame({"k": k_t, "targets": p_t, "mixtures": latent_radial_power(mix),
                          "id_latents": latent_radial_power(probe.ids), "white_noise": latent_radial_power(noise)})
    # coherence |<Z X*>|^2 / (<|Z|^2> <|X|^2>) per bin, over targets and channels: how much of the
    # latent at each k is a linear image of the map
    z, x = np.fft.fft2(probe.latents.astype(np.float64)), np.fft.fft2(probe.fewshot.astype(np.float64))
    index = radial_bin_index(z.shape[-2:])
    coh, corr_pairs = [], []
    iu = np.triu_indices(len(z), 1)
    for b in range(len(k_t)):
        m = index == b
        zx = (z[..., m] * np.conj(x[..., m])).sum(axis=(0, 1, 2))
        coh.append(float(np.abs(zx) ** 2 / ((np.abs(z[..., m]) ** 2).sum() * (np.abs(x[..., m]) ** 2).sum())))
        # mean correlation of the latents of two different targets in this band
        zm = z[..., m].reshape(len(z), -1)
        g = np.real(zm @ np.conj(zm).T)
        nrm = np.sqrt(np.diag(g))
        corr_pairs.append(float(np.mean((g / np.outer(nrm, nrm))[iu])))
    table["image_coherence"] = coh
    table["target_pair_correlation"] = corr_pairs
    table["mixture_over_targets"] = table["mixtures"] / table["targets"]
    table.to_csv(out / "latent_spectra.csv", index=False)
    return table


def run_variant(probe: Probe, variant: dict, seed: int, n_samples: int = 16, oversample: int = 3,
                preview_steps: int = 10):
    """The workflow's discover + default screening (``select: each``) for one setting, decoded."""
    from discoverydiff.engine import RunOptions
    from discoverydiff.screening import screen

    t0 = variant.get("t0", probe.t0)
    targets, ids = probe.latents, probe.ids
    if t0 != probe.t0:
        targets, ids = probe.cached_inversion(t0)
    result = discover(torch.from_numpy(targets), torch.from_numpy(ids), n_samples * oversample, seed=seed,
                      min_weight=variant.get("min_weight", 0.4), target_names=None)
    latents = result.latents.numpy()
    transform = variant.get("transform")
    if transform == "match":
        latents = match_radial_power(latents, latent_radial_power(targets))
    options = RunOptions(batch_size=probe.batch)
    steps = variant.get("steps", probe.n_steps)
    keep = np.ones(len(latents), bool)
    if oversample > 1:
        keep = screen(probe.model, options, t0, preview_steps, torch.from_numpy(latents), torch.from_numpy(targets),
                      n_samples, [f"c{i}" for i in range(len(latents))], [f"t{i}" for i in range(len(targets))],
                      seed=seed)[0]
    return probe.decode(latents[keep], steps=steps, t0=t0, eta=variant.get("eta", 0.0), seed=seed)


def _cached_inversion(self, t0):
    cache = getattr(self, "_inv_cache", {})
    if t0 not in cache:
        cache[t0] = (self.invert(self.fewshot, t0=t0), self.invert(self.base_samples, t0=t0))
        self._inv_cache = cache
    return cache[t0]


Probe.cached_inversion = _cached_inversion

VARIANTS = {
    "default": {},
    "t0_400": {"t0": 400},
    "t0_300": {"t0": 300},
    "t0_200": {"t0": 200},
    "match": {"transform": "match"},
    "steps_200": {"steps": 200},
    "eta_0.5": {"eta": 0.5},
}


def calibrate(probe: Probe, maps: np.ndarray) -> tuple[np.ndarray, dict]:
    """The decoded set with its mean spectrum's power-law tilt and level set to the few-shot maps' (when
    the tilt is beyond two null standard deviations: :func:`discoverydiff.spectral.fit_calibration`)."""
    return calibrate_spectrum(maps, probe.fewshot_phys, probe.record)


def variants(probe: Probe, out: Path, seeds, names) -> pd.DataFrame:
    """Every variant and seed, decoded and measured as it is and calibrated (suffix ``+cal``)."""
    rows = []
    for name in names:
        for seed in seeds:
            start = time.time()
            maps = run_variant(probe, VARIANTS[name], seed)
            calibrated, fit = calibrate(probe, maps)
            table = probe.measure({"discovered": maps, "calibrated": calibrated}).set_index("set")
            real = table.loc["fewshot_maps"]
            for which, label in (("discovered", name), ("calibrated", f"{name}+cal")):
                rows.append({"variant": label, "seed": seed, **table.loc[which].to_dict(),
                             "fewshot_slope_diff": real["slope_diff"], **{f"fit_{k}": v for k, v in fit.items()},
                             "seconds": time.time() - start})
                log.info("%s seed %d: %s", label, seed, {k: round(v, 3) for k, v in rows[-1].items()
                                                         if isinstance(v, float)})
            pd.DataFrame(rows).to_csv(out / "variants.csv", index=False)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", choices=("diagnose", "latent", "perturb", "variants", "spread"))
    ap.add_argument("results", help="a field dataset's results folder (tensors.h5, latents.h5)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--variants", nargs="+", default=["default", "t0_400", "t0_300", "t0_200"], choices=list(VARIANTS))
    ap.add_argument("--pairs", type=int, default=48)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default="resources/models/demo_unet32", help="the diffusers UNet2DModel directory")
    ap.add_argument("--reference", default="heldout", help="split of tensors.h5 with the unseen maps (e.g. test)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    probe = Probe.load(args.results, args.model, reference=args.reference)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.precision", 3):
        if args.experiment == "diagnose":
            print(diagnose(probe, args.out, args.pairs).to_string(index=False))
            print(pd.read_csv(args.out / "weight_scan.csv").to_string(index=False))
        elif args.experiment == "perturb":
            print(perturb(probe, args.out).to_string(index=False))
            spectra = pd.read_csv(args.out / "perturb_spectra.csv").pivot(index="k", columns="set", values="power")
            print((spectra.div(spectra["heldout"], axis=0)).to_string())
        elif args.experiment == "latent":
            print(latent_spectra(probe, args.out).to_string(index=False))
        elif args.experiment == "spread":
            spread = real_spread(probe)
            (args.out / "spread.json").write_text(json.dumps(spread, indent=2))
            print(spread)
        else:
            print(variants(probe, args.out, args.seeds, args.variants).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
