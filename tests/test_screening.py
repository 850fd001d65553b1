"""Decoded screening: per-map statistics against closed forms, the ranking, and the file round trip."""

import numpy as np
import pandas as pd
import pytest
import torch

from discoverydiff.demo import gaussian_random_field
from discoverydiff.diffusion import DDIMSettings
from discoverydiff.discovery import discover_from_files
from discoverydiff.discovery.screening import STATISTICS, map_statistics, preview, screen_scores, select
from discoverydiff.engine import RunOptions, invert_tensor_file, sample_base_model
from discoverydiff.errors import ConfigError
from discoverydiff.models import analytic_model
from discoverydiff.store import read_attrs, read_tensor_file, write_tensor_file


def test_moments_of_a_two_valued_map_match_the_bernoulli_closed_form():
    # a share p of the pixels at 1, the rest at 0: mean p, std sqrt(p q), skewness (q - p) / sqrt(p q),
    # excess kurtosis (1 - 6 p q) / (p q)
    p, side = 0.1875, 32  # 192 of 1024 pixels
    image = np.zeros((side, side))
    image.flat[np.random.default_rng(0).choice(side * side, int(p * side * side), replace=False)] = 1.0
    stats = map_statistics(np.repeat(image[None, None], 3, axis=1)).iloc[0]  # 3 equal channels: their mean
    q = 1 - p
    assert stats["mean"] == pytest.approx(p)
    assert stats["std"] == pytest.approx(np.sqrt(p * q))
    assert stats["skewness"] == pytest.approx((q - p) / np.sqrt(p * q))
    assert stats["kurtosis"] == pytest.approx((1 - 6 * p * q) / (p * q))


@pytest.mark.parametrize("slope", [-2.0, -3.0, -4.0])
def test_power_slope_recovers_the_index_of_gaussian_random_fields(slope):
    rng = np.random.default_rng(1)
    maps = np.stack([gaussian_random_field((64, 64), slope, rng) for _ in range(24)])
    measured = map_statistics(maps)["power_slope"]
    assert measured.mean() == pytest.approx(slope, abs=0.15)


def test_scores_rank_candidates_by_distance_to_the_targets():
    rng = np.random.default_rng(2)
    targets = pd.DataFrame(rng.normal(size=(12, len(STATISTICS))), columns=list(STATISTICS))
    centre = targets.mean()
    candidates = pd.DataFrame([centre, centre + 3 * targets.std(ddof=1), centre - 0.5 * targets.std(ddof=1)])
    # the unit is the targets' spread when the other set does not vary ...
    z, score = screen_scores(candidates, targets, spread_of=candidates.iloc[:1])
    np.testing.assert_allclose(score, [0.0, 9.0, 0.25], atol=1e-12)
    np.testing.assert_allclose(z.iloc[1], 3.0)
    assert select(score, 2).tolist() == [True, False, True]
    # ... and widens by the candidates' own spread: sqrt(var_t + var_c), both with ddof 1
    z, score = screen_scores(candidates, targets)
    var_t, var_c = targets.var(ddof=1), np.array([np.var([0, 3, -0.5], ddof=1)]) * targets.var(ddof=1)
    np.testing.assert_allclose(z.iloc[1], 3 * np.sqrt(var_t / (var_t + var_c)), rtol=1e-12)
    assert select(score, 2).tolist() == [True, False, True]
    assert select([1.0, 0.5, 0.5], 1).tolist() == [False, True, False]  # a tie goes to the earlier one
    # a statistic on which the targets agree is left out instead of dividing by zero
    flat = targets.assign(mean=1.0)
    z, score = screen_scores(candidates.assign(mean=5.0), flat)  # neither set varies in the mean
    assert "mean" not in z.columns and np.isfinite(score).all()
    with pytest.raises(ValueError, match="cannot keep 4 of 3"):
        select(score, 4)
    with pytest.raises(ConfigError, match="at least 2"):
        screen_scores(candidates, targets.iloc[:1])


@pytest.fixture()
def latent_files(tmp_path):
    """Inverted log-normal targets and base-model latents of a closed-form denoiser (no weights)."""
    rng = np.random.default_rng(3)
    fields = np.stack([gaussian_random_field((8, 8), -3.0, rng) for _ in range(10)])
    x = np.repeat(np.tanh(0.5 * fields)[:, None], 3, axis=1).astype(np.float32)
    tensors = write_tensor_file(tmp_path / "tensors.h5", x, [f"cloud_{i}" for i in range(10)], "images",
                                split=["fewshot"] * 10)
    model = analytic_model("analytic_gaussian", np.tanh(rng.normal(0, 0.5, (200, 3, 8, 8))), description="test")
    settings, options = DDIMSettings(600, 10), RunOptions(batch_size=8)
    invert_tensor_file(model, tensors, tmp_path / "latents.h5", settings, options)
    sample_base_model(model, tmp_path / "samples.h5", tmp_path / "id_latents.h5", 20, settings, options)
    return tmp_path, model, options


def test_preview_is_a_short_ddim_decode(latent_files):
    tmp, model, options = latent_files
    latents = torch.from_numpy(read_tensor_file(tmp / "latents.h5").x)
    from discoverydiff.diffusion import ddim_generate

    _, eps_fn = options.eps_fn(model)
    expected = ddim_generate(eps_fn, latents, model.alpha_bar, DDIMSettings(600, 4, 0.0)).numpy()
    # float32 convolutions of batches of 8 and 2 against one batch of 10: equal to rounding (measured 2e-6)
    np.testing.assert_allclose(preview(model, latents, 600, 4, options), expected, rtol=1e-5, atol=1e-5)


def test_discovery_keeps_the_best_screened_candidates_and_records_the_rest(latent_files):
    tmp, model, options = latent_files
    cfg = {"n_samples": 6, "n_ref": 4, "tolerance": 4.0, "max_candidates": 50_000,
           "screen": {"oversample": 3, "preview_steps": 5}}
    discover_from_files(tmp / "latents.h5", tmp / "id_latents.h5", tmp / "discovered.h5", tmp / "geometry.csv", cfg,
                        seed=1, model=model, options=options, screening_path=tmp / "screening.csv")
    kept = read_tensor_file(tmp / "discovered.h5")
    table = pd.read_csv(tmp / "screening.csv")
    cands = table[table["set"] == "candidate"].astype({"kept": bool})
    assert len(kept.x) == 6 and len(cands) == 18 and (table["set"] == "fewshot").sum() == 10
    assert cands["kept"].sum() == 6 and cands.loc[cands["kept"], "name"].tolist() == kept.names
    assert cands.loc[cands["kept"], "score"].max() <= cands.loc[~cands["kept"], "score"].min()
    # the table's statistics are those of a preview of the kept latents
    again = map_statistics(preview(model, torch.from_numpy(kept.x), 600, 5, options))
    np.testing.assert_allclose(again[list(STATISTICS)].to_numpy(),
                               cands.loc[cands["kept"], list(STATISTICS)].to_numpy(), rtol=1e-5, atol=1e-6)
    record = read_attrs(tmp / "discovered.h5")["acceptance"]
    screening = record["screening"]
    assert screening["oversample"] == 3 and screening["n_candidates"] == 18 and screening["n_kept"] == 6
    assert sorted(screening["screened_out_names"]) == sorted(cands.loc[~cands["kept"], "name"])
    import h5py

    with h5py.File(tmp / "discovered.h5") as h5:
        assert h5["screened_out"].shape == (12, 3, 8, 8) and h5["criteria"].shape == (6, 3)
    # without the engine, screening cannot run: a clear error, no output
    with pytest.raises(ConfigError, match="needs the base model"):
        discover_from_files(tmp / "latents.h5", tmp / "id_latents.h5", tmp / "other.h5", tmp / "other.csv", cfg)
    assert not (tmp / "other.h5").exists()


def test_discovery_screening_by_set_starts_from_the_scores_and_records_the_swaps(latent_files):
    tmp, model, options = latent_files
    cfg = {"n_samples": 6, "n_ref": 4, "tolerance": 4.0, "max_candidates": 50_000,
           "screen": {"oversample": 3, "preview_steps": 5, "select": "set"}}
    discover_from_files(tmp / "latents.h5", tmp / "id_latents.h5", tmp / "by_set.h5", tmp / "geometry.csv", cfg,
                        seed=1, model=model, options=options, screening_path=tmp / "by_set.csv")
    cands = pd.read_csv(tmp / "by_set.csv").query("set == 'candidate'").astype({"kept": bool, "kept_by_score": bool})
    kept = read_tensor_file(tmp / "by_set.h5")
    assert cands["kept"].sum() == cands["kept_by_score"].sum() == 6
    assert cands.loc[cands["kept"], "name"].tolist() == kept.names
    # the per-candidate choice is the lowest scores; the set search only lowers its objective
    by_score = cands.loc[cands["kept_by_score"], "score"]
    assert by_score.max() <= cands.loc[~cands["kept_by_score"], "score"].min()
    screening = read_attrs(tmp / "by_set.h5")["acceptance"]["screening"]
    chosen = screening["set_selection"]
    assert screening["select"] == "set" and chosen["objective_kept"] <= chosen["objective_start"]
    assert chosen["restarts"] == 20 and 0 <= chosen["best_start"] <= 20
    if chosen["best_start"] == 0:  # the winning descent began at the per-candidate choice
        assert (cands["kept"] != cands["kept_by_score"]).sum() <= 2 * chosen["swaps"]  # one in, one out each
    with pytest.raises(ConfigError, match="screen.select"):
        discover_from_files(tmp / "latents.h5", tmp / "id_latents.h5", tmp / "bad.h5", tmp / "bad.csv",
                            {**cfg, "screen": {"oversample": 3, "select": "best"}}, seed=1, model=model,
                            options=options, screening_path=tmp / "bad_s.csv")
    assert not (tmp / "bad.h5").exists()


def test_full_decodes_are_the_samples_and_are_compared_with_the_fewshot_maps(latent_files):
    tmp, model, options = latent_files
    cfg = {"n_samples": 4, "n_ref": 4, "tolerance": 4.0, "max_candidates": 50_000,
           "screen": {"oversample": 3, "preview_steps": "full", "select": "set", "restarts": 3}}
    discover_from_files(tmp / "latents.h5", tmp / "id_latents.h5", tmp / "full.h5", tmp / "geometry.csv", cfg,
                        seed=1, model=model, options=options, screening_path=tmp / "full.csv",
                        tensors_path=tmp / "tensors.h5")
    table = pd.read_csv(tmp / "full.csv")
    kept = read_tensor_file(tmp / "full.h5")
    cands = table[table["set"] == "candidate"].astype({"kept": bool})
    assert len(cands) == 12 and cands.loc[cands["kept"], "name"].tolist() == kept.names
    # the candidates' rows are statistics of the generation's own decode (the latents' t0 and steps) ...
    from discoverydiff.engine import generate_tensor_file

    generate_tensor_file(model, tmp / "full.h5", tmp / "decoded.h5", DDIMSettings(600, 10), options)
    np.testing.assert_allclose(map_statistics(read_tensor_file(tmp / "decoded.h5").x)[list(STATISTICS)].to_numpy(),
                               cands.loc[cands["kept"], list(STATISTICS)].to_numpy(), rtol=1e-4, atol=1e-5)
    # ... and the targets' rows those of the few-shot maps themselves, not of decodes of their latents
    fewshot = read_tensor_file(tmp / "tensors.h5", split="fewshot")
    np.testing.assert_allclose(map_statistics(fewshot.x)[list(STATISTICS)].to_numpy(),
                               table.loc[table["set"] == "fewshot", list(STATISTICS)].to_numpy(), rtol=1e-6)
    screening = read_attrs(tmp / "full.h5")["acceptance"]["screening"]
    assert screening["preview_steps"] == 10 and screening["full_decodes"] and screening["reference"] == "fewshot maps"
    assert screening["restarts"] == 3 and screening["set_selection"]["restarts"] == 3
    # full decodes need the few-shot maps; a bad step count is named; neither leaves output
    with pytest.raises(ConfigError, match="needs the dataset's tensors.h5"):
        discover_from_files(tmp / "latents.h5", tmp / "id_latents.h5", tmp / "no.h5", tmp / "no.csv", cfg, seed=1,
                            model=model, options=options, screening_path=tmp / "no_s.csv")
    with pytest.raises(ConfigError, match="preview_steps must be"):
        discover_from_files(tmp / "latents.h5", tmp / "id_latents.h5", tmp / "no.h5", tmp / "no.csv",
                            {**cfg, "screen": {"oversample": 3, "preview_steps": "fast"}}, seed=1, model=model,
                            options=options, screening_path=tmp / "no_s.csv", tensors_path=tmp / "tensors.h5")
    with pytest.raises(ConfigError, match="restarts must be at least 0"):
        discover_from_files(tmp / "latents.h5", tmp / "id_latents.h5", tmp / "no.h5", tmp / "no.csv",
                            {**cfg, "screen": {"oversample": 3, "select": "set", "restarts": -1}}, seed=1, model=model,
                            options=options, screening_path=tmp / "no_s.csv", tensors_path=tmp / "tensors.h5")
    assert not (tmp / "no.h5").exists() and not (tmp / "no_s.csv").exists()
