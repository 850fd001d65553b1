"""Discovery's settings chosen on the validation maps: the grid, what the config fixes, the objective, the floors."""

import numpy as np
import pytest
import yaml

from discoverydiff.discovery import search
from discoverydiff.errors import ConfigError, InputError


def test_config_values_win_over_the_search_and_the_fallbacks():
    cfg = {"n_samples": 8, "min_weight": 0.45, "screen": {"oversample": None, "select": "set"}, "search": {}}
    assert search.config_fixed(cfg) == {"min_weight": 0.45, "screen.select": "set"}
    resolved = search.resolve(cfg, {"min_weight": 0.2, "screen.oversample": 5, "screen.select": "each"})
    # the config's own min_weight and select win; the search's oversample fills the open knob; the rest fall back
    assert resolved["min_weight"] == 0.45 and resolved["screen"]["select"] == "set"
    assert resolved["screen"]["oversample"] == 5 and resolved["screen"]["preview_steps"] == 10
    assert resolved["scheme"] == "pairs" and "search" not in resolved and resolved["n_samples"] == 8
    assert cfg["screen"]["oversample"] is None  # the config section is not modified
    plain = search.resolve({"screen": {}})
    assert "min_weight" not in plain  # the scheme's own default (0.4 for pairs) applies


def test_grid_is_the_product_of_the_open_knobs():
    grid = {"min_weight": [0.2, 0.4], "screen.select": ["each", "set"], "screen.oversample": [3]}
    settings = search.grid_settings(grid, fixed={"screen.select": "set"})
    assert settings == [{"min_weight": 0.2, "screen.oversample": 3}, {"min_weight": 0.4, "screen.oversample": 3}]
    assert search.grid_settings({"min_weight": [0.3]}, fixed={"min_weight": 0.4}) == [{}]
    with pytest.raises(ConfigError, match="unknown knobs.*temperature"):
        search.grid_settings({"temperature": [1.0]}, {})
    with pytest.raises(ConfigError, match="lists no value"):
        search.grid_settings({"min_weight": []}, {})


def test_objective_is_the_mean_squared_distance_in_noise_units():
    units = {"pdf_w1_log10": 0.02, "power_slope_difference": 0.1}
    row = {"pdf_w1_log10": 0.04, "power_slope_difference": -0.3, "recall": 0.5, "clipped_share": 0.2}
    # (0.04 / 0.02)^2 = 4 and (|-0.3| / 0.1)^2 = 9; statistics without a unit do not count
    assert search._objective(row, units) == pytest.approx((4 + 9) / 2)
    assert search._objective({}, units) == np.inf


def test_misses_are_in_units_of_each_floor():
    floors = dict(search.FLOORS)
    ok = search._misses({"near_copy_share": 0.0, "novelty_w1": 0.1, "recall": 0.8}, floors, recall_floor=0.7)
    assert not any(ok.values())
    bad = search._misses({"near_copy_share": 0.125, "novelty_w1": 0.3, "recall": 0.35}, floors, recall_floor=0.7)
    assert bad == pytest.approx({"near_copy_share": 1.0, "novelty_w1": 1.0, "recall": 0.5})
    # estimates against the validation maps miss only beyond their standard error; the near-copy share is exact
    noisy = {"near_copy_share": 0.125, "novelty_w1": 0.153, "recall": 0.62}
    assert search._misses(noisy, floors, 0.7)["novelty_w1"] > 0 and search._misses(noisy, floors, 0.7)["recall"] > 0
    within = search._misses(noisy, floors, 0.7, {"novelty_w1": 0.03, "recall": 0.1, "near_copy_share": 0.5})
    assert within == pytest.approx({"near_copy_share": 1.0, "novelty_w1": 0.0, "recall": 0.0})
    beyond = search._misses({"novelty_w1": 0.3, "recall": 0.35}, floors, 0.7, {"novelty_w1": 0.05, "recall": 0.1})
    assert beyond == pytest.approx({"near_copy_share": 0.0, "novelty_w1": (0.3 - 0.05 - 0.15) / 0.15,
                                    "recall": (0.7 - 0.35 - 0.1) / 0.7})


def test_standard_errors_are_half_the_bootstrap_interval_over_1_96():
    import pandas as pd

    table = pd.DataFrame({"set": ["discovered", "discovered", "discovered", "baseline_samples"],
                          "statistic": ["recall", "novelty_w1", "pdf_w1_log10", "recall"],
                          "ci_low": [0.5, 0.1, 0.0, 0.0], "ci_high": [0.892, 0.198, 1.0, 1.0]})
    assert search._standard_errors(table) == pytest.approx({"recall": 0.1, "novelty_w1": 0.025})


def test_spectrum_calibration_follows_the_kind_unless_the_config_says():
    assert search.calibrate_spectrum({}, "field") and not search.calibrate_spectrum({}, "galaxy")
    assert not search.calibrate_spectrum({"spectrum": "none"}, "field")
    assert search.calibrate_spectrum({"spectrum": "calibrate"}, "galaxy")
    with pytest.raises(ConfigError, match="calibrate' or 'none"):
        search.calibrate_spectrum({"spectrum": "yes"}, "field")


def test_a_settings_file_is_checked_when_read(tmp_path):
    good = tmp_path / "settings.yaml"
    good.write_text(yaml.safe_dump({"chosen": {"min_weight": 0.2}, "reason": "x"}))
    assert search.read_choice(good) == {"min_weight": 0.2}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"chosen": {"warp": 9}}))
    with pytest.raises(InputError, match="bad.yaml.*unknown discovery knobs"):
        search.read_choice(bad)
    (tmp_path / "empty.yaml").write_text("[]")
    with pytest.raises(InputError, match="no 'chosen'"):
        search.read_choice(tmp_path / "empty.yaml")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_choose_settings_measures_every_setting_against_the_validation_maps_only(tmp_path, rng):
    """A small run end to end: the chosen setting is the feasible one with the lowest objective, and the test
    maps are never read (they are replaced by NaN here, which any read of them refuses)."""
    import h5py
    from tiny_inputs import write_lognormal_fits

    from discoverydiff.diffusion import DDIMSettings
    from discoverydiff.engine import RunOptions, invert_tensor_file, sample_base_model
    from discoverydiff.ingest import ingest_dataset
    from discoverydiff.models import analytic_model

    inputs = write_lognormal_fits(tmp_path / "in", 20, 0.5, rng, "m")
    cfg = {"inputs": [{"format": "fits", "pattern": str(inputs / "*.fits")}], "channels": "replicate",
           "n_fewshot": 8, "n_validation": 6}
    tensors = tmp_path / "tensors.h5"
    ingest_dataset("d", cfg, tensors, tmp_path / "rejected.csv", resolution=8, seed=1)
    with h5py.File(tensors, "r+") as h5:  # the test maps become unreadable
        split = np.array([s.decode() for s in h5["split"][()]])
        h5["physical"][np.flatnonzero(split == "test")] = np.nan
    model = analytic_model("analytic_gaussian", np.tanh(rng.normal(0, 0.5, (200, 3, 8, 8))), description="t")
    settings, options = DDIMSettings(900, 8), RunOptions(batch_size=8)
    invert_tensor_file(model, tensors, tmp_path / "latents.h5", settings, options)
    sample_base_model(model, tmp_path / "base.h5", tmp_path / "id.h5", 8, settings, options)
    discovery = {"n_samples": 4, "n_ref": 4, "tolerance": 4.0, "max_candidates": 50_000, "screen": {},
                 "search": {"grid": {"min_weight": [0.1, 0.4], "screen.oversample": [1]}}}
    record = search.choose_settings(tensors, tmp_path / "latents.h5", tmp_path / "id.h5", model, settings, options,
                                    discovery, {}, "field", seed=2)
    assert record["reference"] == "validation" and len(record["settings"]) == 2
    assert record["chosen"]["min_weight"] in (0.1, 0.4) and record["chosen"]["screen.oversample"] == 1
    rows = record["settings"]
    for row in rows:
        assert row["objective"] == pytest.approx(search._objective(row["statistics"], record["units"]))
        assert set(row["standard_errors"]) == {"recall", "novelty_w1"}  # from the search's own bootstrap
    feasible = [r for r in rows if r["feasible"]]
    best = min(feasible or rows, key=lambda r: r["objective"] if feasible else sum(r["misses"].values()))
    assert record["chosen"]["min_weight"] == best["setting"]["min_weight"]
    assert record["cost"]["unet_forwards"] > 0 and record["cost"]["settings"] == 2
    yaml.safe_load(yaml.safe_dump(record))  # what rule settings writes reads back
