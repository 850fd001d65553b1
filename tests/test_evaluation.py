"""The evaluation's parts: the controls, the seeds summary, the compute table and the results Markdown."""

import numpy as np
import pandas as pd
import pytest

from discoverydiff.evaluation.controls import baseline_sets, prior_config, unscreened_latents
from discoverydiff.evaluation.markdown import dataset_section, main
from discoverydiff.evaluation.seeds import summarize_seeds
from discoverydiff.store import TensorFileWriter, read_tensor_file, write_tensor_file


def test_prior_control_is_the_papers_scheme_with_the_same_budget():
    cfg = {"n_samples": 8, "min_weight": 0.45, "max_per_pair": 1, "screen": {"oversample": 6, "select": "set"}}
    prior = prior_config(cfg)
    assert prior["scheme"] == "prior" and prior["screen"] == cfg["screen"] and prior["n_samples"] == 8
    assert "min_weight" not in prior and "max_per_pair" not in prior  # the prior scheme's own defaults
    assert cfg["min_weight"] == 0.45  # the dataset's section is not modified


def test_unscreened_draw_comes_from_kept_and_screened_out_latents(tmp_path):
    kept = np.arange(4, dtype=np.float32)[:, None, None, None] * np.ones((4, 1, 2, 2), np.float32)
    out = 10 + np.arange(8, dtype=np.float32)[:, None, None, None] * np.ones((8, 1, 2, 2), np.float32)
    kept_names = [f"discovered_{i:05d}<-a+b@w=0.5" for i in (0, 3, 5, 9)]
    out_names = [f"discovered_{i:05d}<-a+c@w=0.5" for i in (1, 2, 4, 6, 7, 8, 10, 11)]
    record = {"screening": {"oversample": 3, "screened_out_names": out_names}}
    with TensorFileWriter(tmp_path / "d.h5", kept.shape, "latents", {"acceptance": record}) as w:
        w.write(0, kept, kept_names)
        w.add_dataset("screened_out", out)
    unscreened_latents(tmp_path / "d.h5", tmp_path / "u.h5", 6, seed=1)
    drawn = read_tensor_file(tmp_path / "u.h5")
    assert len(drawn.names) == 6 and len(set(drawn.names)) == 6
    assert set(drawn.names) <= set(kept_names + out_names)
    pool = dict(zip(kept_names + out_names, np.concatenate([kept, out])[:, 0, 0, 0]))
    assert [pool[n] for n in drawn.names] == list(drawn.x[:, 0, 0, 0])  # each name keeps its latent
    order = [int(n.split("<-")[0].rsplit("_", 1)[1]) for n in drawn.names]
    assert order == sorted(order)  # in discovery's acceptance order
    unscreened_latents(tmp_path / "d.h5", tmp_path / "v.h5", 6, seed=2)
    assert read_tensor_file(tmp_path / "v.h5").names != drawn.names  # another seed, another draw
    with pytest.raises(Exception, match="draws 13 of 12"):
        unscreened_latents(tmp_path / "d.h5", tmp_path / "w.h5", 13)


def test_baseline_sets_keep_the_first_draws_and_the_selection(tmp_path, rng):
    x = np.tanh(rng.normal(size=(6, 3, 8, 8))).astype(np.float32)
    split = ["fewshot"] * 4 + ["test"] * 2
    tensors = write_tensor_file(tmp_path / "t.h5", x, [f"m{i}" for i in range(6)], "images",
                                {"normalization": None}, split=split)
    draws = np.concatenate([np.tanh(rng.normal(size=(6, 3, 8, 8))), x[:4] * 0.99]).astype(np.float32)
    write_tensor_file(tmp_path / "c.h5", draws, [f"sample_{i:05d}" for i in range(10)], "samples",
                      {"finetune": {"steps": 3}})
    baseline_sets(tmp_path / "c.h5", tensors, tmp_path / "b.h5", tmp_path / "s.h5", tmp_path / "s.csv", 4,
                  {"select": "each"}, seed=0)
    first, selected = read_tensor_file(tmp_path / "b.h5"), read_tensor_file(tmp_path / "s.h5")
    np.testing.assert_array_equal(first.x, draws[:4])
    assert first.names == [f"sample_{i:05d}" for i in range(4)] and first.attrs["finetune"] == {"steps": 3}
    table = pd.read_csv(tmp_path / "s.csv")
    kept = table[(table["set"] == "candidate") & (table["kept"] == 1)]["name"].tolist()
    assert selected.names == kept and len(kept) == 4
    # the selection keeps the draws whose statistics are closest to the few-shot maps': the four rescaled copies
    assert set(kept) == {f"sample_{i:05d}" for i in range(6, 10)}


def test_seeds_summary_counts_the_seeds_in_which_each_side_is_closer():
    rows = []
    for seed, (disc, other) in enumerate([(0.1, 0.3), (0.2, 0.1), (0.1, 0.4), (0.3, 0.5)]):
        rows += [{"seed": seed, "set": "discovered", "statistic": "pdf_w1_log10", "value": disc,
                  "delta_vs_discovered": np.nan},
                 {"seed": seed, "set": "baseline_samples", "statistic": "pdf_w1_log10", "value": other,
                  "delta_vs_discovered": other - disc},
                 {"seed": seed, "set": "baseline_samples", "statistic": "clipped_share", "value": 0.0,
                  "delta_vs_discovered": np.nan}]
    summary = summarize_seeds(pd.DataFrame(rows))
    assert list(summary["statistic"]) == ["pdf_w1_log10"]  # no direction, no summary
    row = summary.iloc[0]
    deltas = np.array([0.2, -0.1, 0.3, 0.2])
    assert row["n_seeds"] == 4 and row["share_discovered_closer"] == 0.75 and row["share_set_closer"] == 0.25
    assert row["delta_mean"] == pytest.approx(deltas.mean()) and row["delta_std"] == pytest.approx(deltas.std(ddof=1))
    assert row["discovered_mean"] == pytest.approx(0.175) and row["set_mean"] == pytest.approx(0.325)


def _comparison(tmp_path):
    rows = []
    for name, value, lo, hi, p in (("baseline_samples", 0.30, 0.05, 0.40, 0.01), ("base_samples", 0.12, -0.1, 0.2,
                                                                                  0.4)):
        rows.append({"set": name, "statistic": "pdf_w1_log10", "value": value, "units": "dex", "set_value": np.nan,
                     "real_value": np.nan, "n_set": 8, "n_real": 12, "ci_low": 0.1, "ci_high": 0.5,
                     "reference": "test", "delta_vs_discovered": value - 0.1, "delta_low": lo, "delta_high": hi,
                     "p_vs_discovered": p})
    rows.append({"set": "discovered", "statistic": "pdf_w1_log10", "value": 0.1, "units": "dex", "set_value": np.nan,
                 "real_value": np.nan, "n_set": 8, "n_real": 12, "ci_low": 0.05, "ci_high": 0.2, "reference": "test",
                 "delta_vs_discovered": np.nan, "delta_low": np.nan, "delta_high": np.nan, "p_vs_discovered": np.nan})
    rows.append({"set": "base_samples", "statistic": "power_slope_difference", "value": -0.9, "units": "",
                 "set_value": -4.0, "real_value": -3.1, "n_set": 8, "n_real": 12, "ci_low": -1.0, "ci_high": -0.8,
                 "reference": "test", "delta_vs_discovered": 0.7, "delta_low": -0.2, "delta_high": -0.05,
                 "p_vs_discovered": 0.0004})
    folder = tmp_path / "radiation"
    folder.mkdir()
    pd.DataFrame(rows).to_csv(folder / "comparison.csv", index=False)
    return folder


def test_results_markdown_is_written_from_the_tables(tmp_path):
    folder = _comparison(tmp_path)
    text = dataset_section(folder)
    assert "| pdf_w1_log10 | 0.100 [0.0500, 0.200] |" in text  # the discovered value with its interval
    assert "▲0.20 [0.050, 0.40] p 0.010" in text  # interval above 0: the discovered set is closer
    assert "▼0.70 [-0.20, -0.050] p <0.001" in text  # interval below 0: farther, whatever the point value
    assert "Against fine-tuned: the discovered set is closer beyond the interval on 1 of 1 statistics, farther " \
           "beyond it on 0" in text
    assert "Against base model: the discovered set is closer beyond the interval on 0 of 2 statistics, farther " \
           "beyond it on 1" in text
    assert main([str(folder), "--out", str(tmp_path / "r.md")]) == 0
    assert (tmp_path / "r.md").read_text().startswith("## radiation")
    assert main([str(tmp_path / "nowhere")]) == 1


def test_results_markdown_holds_the_discovered_set_to_the_bars(tmp_path):
    folder = _comparison(tmp_path)
    table = pd.read_csv(folder / "comparison.csv")
    extra = [("discovered", "recall", 0.70), ("baseline_samples", "recall", 0.95), ("discovered", "near_copy_share",
             0.125), ("discovered", "novelty_w1", 0.05)]
    rows = [{"set": s, "statistic": stat, "value": v, "reference": "test", "delta_vs_discovered": np.nan}
            for s, stat, v in extra]
    pd.concat([table, pd.DataFrame(rows)]).to_csv(folder / "comparison.csv", index=False)
    text = dataset_section(folder)
    # against the fine-tuned set: closer beyond the interval on the one domain statistic
    assert "| not farther beyond the interval on any domain statistic | farther on 0 of 1 | yes |" in text
    assert "| closer on most domain statistics (point estimates) | 1 of 1 | yes |" in text
    # 0.70 < 0.95 - 0.2: missed, and so is 2 near-copies in 16
    assert "fine-tuned set's minus 0.2 | 0.700 vs 0.950 | **no** |" in text
    assert "| near-copy share at most 1/16 | 0.125 | **no** |" in text and "| 0.0500 | yes |" in text
    # a fine-tuned set farther beyond the interval on a domain statistic fails the first bar
    table.loc[(table["set"] == "baseline_samples"), ["delta_low", "delta_high"]] = [-0.3, -0.1]
    table.to_csv(folder / "comparison.csv", index=False)
    assert "farther on 1 of 1: pdf_w1_log10 | **no** |" in dataset_section(folder)


def test_results_markdown_states_the_chosen_settings_every_setting_and_the_coinciding_controls(tmp_path):
    import yaml

    folder = _comparison(tmp_path)
    record = {"chosen": {"min_weight": 0.4, "screen.oversample": 1}, "reason": "the lowest objective",
              "cost": {"settings": 2, "unet_forwards": 960, "seconds": 12.5},
              "floors": {"recall_margin": 0.2, "recall_floor": 0.675},
              "settings": [{"setting": {"screen.oversample": 1}, "objective": 5.91, "feasible": True,
                            "statistics": {"recall": 1.0, "near_copy_share": 0.0, "novelty_w1": 0.11}},
                           {"setting": {"screen.oversample": 3}, "objective": 1.21, "feasible": False,
                            "statistics": {"recall": 0.8125, "near_copy_share": 0.0, "novelty_w1": 0.153}},
                           {"setting": {"screen.oversample": 5}, "error": "too few accepted", "feasible": False}]}
    (folder / "settings.yaml").write_text(yaml.safe_dump(record))
    table = pd.read_csv(folder / "comparison.csv")
    extra = pd.DataFrame([{**table.iloc[0].to_dict(), "set": name} for name in ("discovered_unscreened",
                                                                             "baseline_selected")])
    pd.concat([table, extra]).to_csv(folder / "comparison.csv", index=False)
    text = dataset_section(folder)
    assert "Why: the lowest objective. The search ran 2 settings, 960 UNet forwards, 12.5 s." in text
    assert "| screen.oversample 1 | 5.91 | 1.00 | 0 | 0.110 | yes |" in text
    assert "| screen.oversample 3 | 1.21 | 0.812 | 0 | 0.153 | no |" in text
    assert "screen.oversample 5" not in text  # a setting that found too few candidates has no row of numbers
    assert "minus 0.200 = 0.675" in text
    # nothing screened: the controls that differ from their sets only by screening are said to coincide
    assert "screens nothing: the discovered maps themselves" in text and "the fine-tuned set itself" in text
    record["chosen"]["screen.oversample"] = 3
    (folder / "settings.yaml").write_text(yaml.safe_dump(record))
    assert "screens nothing" not in dataset_section(folder)
    # the acceptance windows and how many of the targets they admit, from the discovered latents' record
    assert "Acceptance windows" not in dataset_section(folder)
    write_tensor_file(folder / "discovered_latents.h5", np.zeros((2, 3, 4, 4), np.float32), ["a", "b"], "latents",
                      {"acceptance": {"tolerance": dict.fromkeys(("dist_to_id", "angle_origin", "angle_pairs"), 2.0),
                                      "target_pass_share": 11 / 12}})
    assert ("Acceptance windows: 2.0 spreads of the few-shot targets' own values; 92% of the targets pass their own "
            "windows.") in dataset_section(folder)


def test_compute_table_counts_the_forwards_of_each_set(tmp_path):
    from discoverydiff.evaluation.compute import compute_table

    root, base = tmp_path / "d", tmp_path / "base_model"
    (root / "benchmarks").mkdir(parents=True)
    (base / "benchmarks").mkdir(parents=True)
    z = np.zeros((5, 3, 4, 4), np.float32)
    write_tensor_file(root / "latents.h5", z, [f"t{i}" for i in range(5)], "latents", {"n_steps": 20})
    screening = {"oversample": 3, "preview_steps": 10, "n_candidates": 12, "full_decodes": False}
    write_tensor_file(root / "discovered_latents.h5", z[:4], [f"d{i}" for i in range(4)], "latents",
                      {"acceptance": {"screening": screening}})
    write_tensor_file(root / "samples.h5", z[:4], [f"s{i}" for i in range(4)], "samples", {"n_steps": 20})
    write_tensor_file(root / "baseline_candidates.h5", np.zeros((12, 3, 4, 4), np.float32),
                      [f"b{i}" for i in range(12)], "samples", {"n_steps": 20,
                                                                  "finetune": {"steps": 7, "batch_size": 2}})
    write_tensor_file(base / "samples.h5", np.zeros((9, 3, 4, 4), np.float32), [f"x{i}" for i in range(9)], "samples",
                      {"n_steps": 20})
    (root / "benchmarks" / "discover.tsv").write_text("s\th:m:s\n12.5\t0:00:12\n")
    (root / "benchmarks" / "invert_1-of-1.tsv").write_text("s\th:m:s\n2.5\t0:00:02\n")
    table = compute_table(root, base, ["discovered", "baseline_samples", "baseline_selected", "base_samples"], 4)
    row = table.set_index("set")
    # inversion 5 x 19, screening (12 candidates + 5 target previews) x 10, decoding 4 x 20
    assert row.loc["discovered", "unet_forwards"] == 5 * 19 + 17 * 10 + 4 * 20
    assert row.loc["discovered", "seconds"] == pytest.approx(15.0)  # the rules that left a benchmark file
    assert row.loc["baseline_samples", "unet_forwards"] == 4 * 20 and row.loc["baseline_selected",
                                                                             "unet_forwards"] == 12 * 20
    assert row.loc["baseline_selected", "training_images"] == 14
    assert row.loc["base_samples", "unet_forwards"] == 4 * 20 and np.isnan(row.loc["base_samples", "seconds"])
