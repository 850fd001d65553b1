"""Figures: every figure is drawn from the run's own result files, and says so in its data sidecar.

Two small results trees are built without Snakemake: a G0 field dataset run through the real
library steps (closed-form model at 8x8: inversion, reconstruction, base-model sampling,
discovery, decoding, statistics), and a galaxy dataset of synthetic 16x16 RGB blobs with
hand-made sample sets. Each test checks the files (PDF, PNG that decodes at the figure's
size and aspect) and that the numbers in the sidecar are the inputs' numbers.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from discoverydiff import plots
from discoverydiff.baseline import sample_empirical
from discoverydiff.demo import gaussian_random_field
from discoverydiff.diffusion import DDIMSettings
from discoverydiff.discovery import discover_from_files
from discoverydiff.engine import (
    RunOptions,
    generate_tensor_file,
    invert_tensor_file,
    reconstruction_table,
    sample_base_model,
)
from discoverydiff.errors import InputError
from discoverydiff.jacobian import jacobian_table
from discoverydiff.models import analytic_model
from discoverydiff.normalize import NormalizationRecord, fit_normalization
from discoverydiff.physical import to_rgb_uint8
from discoverydiff.stats import dataset_statistics, morphology_of_set, nearest_neighbour_ratios, table_set_name
from discoverydiff.store import read_attrs, read_tensor_file, write_tensor_file

N_FEWSHOT, N_VALIDATION, N_TEST, N_BASE, N_DISCOVERED = 6, 3, 3, 8, 3


def _tree(root):
    results, base = root / "results" / "dataset", root / "results" / "base_model"
    results.mkdir(parents=True)
    base.mkdir(parents=True)
    return results, base


def _near_copies(x, rng, scale=0.01):
    return np.clip(x + rng.normal(0, scale, x.shape), -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def field_tree(tmp_path_factory):
    """G0 maps (Habing, log10 record) through inversion, discovery, sampling and statistics."""
    root = tmp_path_factory.mktemp("field")
    results, base = _tree(root)
    rng = np.random.default_rng(7)
    n = N_FEWSHOT + N_VALIDATION + N_TEST
    g0 = np.stack([10.0 ** (2.5 + 0.6 * gaussian_random_field((8, 8), -3.0, rng)) for _ in range(n)])[:, None]
    record = fit_normalization(g0, "log10", units=["Habing"], channel_names=["field"], channel_mode="replicate")
    x, _ = record.to_normalized(g0)
    tensors = write_tensor_file(results / "tensors.h5", x, [f"cloud_{i:02d}.fits" for i in range(n)], "images",
                                {"normalization": record.to_json(), "dataset": "dataset"},
                                split=["fewshot"] * N_FEWSHOT + ["validation"] * N_VALIDATION + ["test"] * N_TEST)
    model = analytic_model("analytic_gaussian", np.tanh(rng.normal(0, 0.5, (200, 3, 8, 8))), description="test")
    settings, options = DDIMSettings(900, 10), RunOptions(batch_size=16)
    invert_tensor_file(model, tensors, results / "latents.h5", settings, options)
    generate_tensor_file(model, results / "latents.h5", results / "reconstruction.h5", settings, options,
                         kind="reconstruction")
    reconstruction_table(tensors, results / "reconstruction.h5").to_csv(results / "reconstruction.csv", index=False)
    sample_base_model(model, base / "samples.h5", base / "id_latents.h5", N_BASE, settings, options)
    discover_from_files(results / "latents.h5", base / "id_latents.h5", results / "discovered_latents.h5",
                        results / "geometry.csv",
                        {"n_samples": N_DISCOVERED, "n_ref": 4, "tolerance": 4.0, "max_candidates": 50_000})
    generate_tensor_file(model, results / "discovered_latents.h5", results / "samples.h5", settings, options)
    # a stand-in "fine-tuned baseline" that memorized: near-copies of the first targets
    write_tensor_file(results / "baseline_samples.h5", _near_copies(x[:4], rng), [f"ft_{i}" for i in range(4)],
                      "samples", {"normalization": record.to_json()})
    sets = {"samples": results / "samples.h5", "base_samples": base / "samples.h5",
            "baseline_samples": results / "baseline_samples.h5"}
    sample_empirical(model, tensors, results / "empirical_samples.h5", settings, options, N_BASE - 2)
    jacobian_table(model, {"fewshot": (x[:2], ["a", "b"]), "in_domain": (x[N_FEWSHOT:N_FEWSHOT + 2], ["c", "d"])},
                   [100, 500, 900], k=4, oversample=2, power_iterations=0).to_csv(results / "jacobian.csv", index=False)
    result = dataset_statistics(tensors, sets, "field", {"permutations": 20},
                                empirical_path=results / "empirical_samples.h5")
    result.comparison.to_csv(results / "comparison.csv", index=False)
    result.spectra.to_csv(results / "power_spectra.csv", index=False)
    return {"results": results, "base": base, "tensors": tensors, "record": record, "sets": sets, "root": root}


def _blobs(rng, n, size=16):
    """Elliptical Gaussian galaxies with a little sky noise, 8-bit RGB scale, (n, 3, size, size)."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    out = []
    for _ in range(n):
        q, angle, sigma = rng.uniform(0.4, 1.0), rng.uniform(0, np.pi), rng.uniform(1.5, 3.0)
        a = xx * np.cos(angle) + yy * np.sin(angle)
        b = -xx * np.sin(angle) + yy * np.cos(angle)
        light = np.exp(-0.5 * (a**2 + (b / q) ** 2) / sigma**2)
        colour = rng.uniform(0.7, 1.0, 3)[:, None, None]
        out.append(np.clip(220 * colour * light + 8 + rng.normal(0, 2, (3, size, size)), 0, 255))
    return np.stack(out)


@pytest.fixture(scope="module")
def galaxy_tree(tmp_path_factory):
    """Galaxy cutouts (linear 0-255 record) with reconstructions and three sample sets, no model."""
    root = tmp_path_factory.mktemp("galaxy")
    results, base = _tree(root)
    rng = np.random.default_rng(3)
    n_fewshot, n_test = 4, 2
    rgb = _blobs(rng, n_fewshot + n_test)
    record = fit_normalization(rgb, "linear", lo=0, hi=255, units=["", "", ""], channel_names=["R", "G", "B"])
    x, _ = record.to_normalized(rgb)
    tensors = write_tensor_file(results / "tensors.h5", x, [f"{100000 + i}.jpg" for i in range(len(x))], "images",
                                {"normalization": record.to_json()},
                                split=["fewshot"] * n_fewshot + ["test"] * n_test)
    write_tensor_file(results / "reconstruction.h5", _near_copies(x[:n_fewshot], rng, 0.05),
                      [f"{100000 + i}.jpg" for i in range(n_fewshot)], "reconstruction")
    reconstruction_table(tensors, results / "reconstruction.h5").to_csv(results / "reconstruction.csv", index=False)
    new, _ = record.to_normalized(_blobs(rng, 3))
    write_tensor_file(results / "samples.h5", new, [f"discovered_{i}" for i in range(3)], "samples")
    write_tensor_file(base / "samples.h5", np.tanh(rng.normal(0, 0.5, (3, 3, 16, 16))).astype(np.float32),
                      [f"sample_{i}" for i in range(3)], "samples")
    sets = {"samples": results / "samples.h5", "base_samples": base / "samples.h5"}
    (results / "morphology").mkdir()
    for name in ("fewshot", "test", *sets):  # what rule morphology writes
        morphology_of_set(tensors, name, sets.get(name)).to_csv(results / "morphology" / f"{name}.csv", index=False)
    return {"results": results, "base": base, "tensors": tensors, "record": record, "root": root, "sets": sets}


@pytest.fixture(scope="module")
def field_figures(field_tree):
    """Every figure of the field dataset, as the workflow makes them: (directory, files)."""
    out = field_tree["root"] / "figures"
    return out, plots.make_all_figures(field_tree["results"], field_tree["base"], out, "field")


@pytest.fixture(scope="module")
def galaxy_figures(galaxy_tree):
    out = galaxy_tree["root"] / "figures"
    return out, plots.make_all_figures(galaxy_tree["results"], galaxy_tree["base"], out, "galaxy")


def _pdf_size_in(path) -> tuple[float, float]:
    box = re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", path.read_bytes())
    assert box, f"{path} has no MediaBox"
    return float(box.group(1)) / 72.0, float(box.group(2)) / 72.0


def figure(directory, stem) -> plots.FigureFiles:
    return plots.FigureFiles(directory / f"{stem}.pdf", directory / f"{stem}.png", directory / f"{stem}.csv")


def check_files(files, width_in):
    """PDF and PNG exist, the PNG decodes at 300 dpi with the PDF's aspect, the sidecar reads."""
    assert [f.suffix for f in files] == [".pdf", ".png", ".csv"]
    assert all(f.exists() and f.stat().st_size > 0 for f in files)
    assert files.pdf.read_bytes().startswith(b"%PDF")
    with Image.open(files.png) as image:
        image.load()
        width_px, height_px = image.size
    pdf_w, pdf_h = _pdf_size_in(files.pdf)
    assert pdf_w == pytest.approx(width_in)
    assert width_px == round(width_in * plots.PNG_DPI)
    assert width_px / height_px == pytest.approx(pdf_w / pdf_h, rel=0.01)
    assert not list(files.pdf.parent.glob(".*.part"))  # no temporary file left behind
    return pd.read_csv(files.data)


# ----------------------------------------------------------------------------- reconstruction


def test_reconstruction_columns_carry_the_psnr_of_reconstruction_csv(field_tree, tmp_path):
    results = field_tree["results"]
    files = plots.plot_reconstruction(field_tree["tensors"], results / "reconstruction.h5",
                                      results / "reconstruction.csv", tmp_path / "rec", n=4)
    data = check_files(files, plots.DOUBLE_COLUMN_IN)
    rec = read_tensor_file(results / "reconstruction.h5")
    assert list(data["name"]) == rec.names[:4]
    table = pd.read_csv(results / "reconstruction.csv").set_index("name")
    np.testing.assert_array_equal(data["psnr_db"], table.loc[data["name"], "psnr_db"])
    np.testing.assert_array_equal(data["mse_normalized"], table.loc[data["name"], "mse_normalized"])
    # residuals in dex, from the physical maps of this run
    record = field_tree["record"]
    real = read_tensor_file(field_tree["tensors"], split="fewshot").x[:4]
    dex = np.log10(record.to_physical(rec.x[:4])[:, 0]) - np.log10(record.to_physical(real)[:, 0])
    np.testing.assert_allclose(data["residual_rms"], np.sqrt((dex**2).mean(axis=(1, 2))), rtol=1e-9)
    assert set(data["residual_units"]) == {"dex"}
    assert data["vmin"].iloc[0] == pytest.approx(10 ** record.lo[0])
    assert data["vmax"].iloc[0] == pytest.approx(10 ** record.hi[0])


def test_reconstruction_needs_a_table_row_for_every_image(field_tree, tmp_path):
    results = field_tree["results"]
    table = pd.read_csv(results / "reconstruction.csv")
    table.iloc[1:].to_csv(tmp_path / "partial.csv", index=False)
    with pytest.raises(InputError, match=rf"partial.csv: has no row for image '{table['name'][0]}'"):
        plots.plot_reconstruction(field_tree["tensors"], results / "reconstruction.h5", tmp_path / "partial.csv",
                                  tmp_path / "rec")
    assert not list(tmp_path.glob("rec*"))


def test_reconstruction_of_galaxies_is_rgb_with_residuals_on_the_8bit_scale(galaxy_tree, galaxy_figures):
    out, _ = galaxy_figures
    data = check_files(figure(out, "reconstruction"), plots.DOUBLE_COLUMN_IN)
    assert list(data[["vmin", "vmax"]].iloc[0]) == [0.0, 255.0]
    assert set(data["residual_units"]) == {"0-255"}
    record = galaxy_tree["record"]
    real = read_tensor_file(galaxy_tree["tensors"], split="fewshot").x
    rec = read_tensor_file(galaxy_tree["results"] / "reconstruction.h5").x
    residual = (record.to_physical(rec) - record.to_physical(real)).mean(axis=1)
    np.testing.assert_allclose(data["residual_rms"], np.sqrt((residual**2).mean(axis=(1, 2))), rtol=1e-9)


# ----------------------------------------------------------------------------- latent geometry


def test_latent_geometry_counts_every_latent_and_draws_the_run_s_windows(field_tree, field_figures):
    results = field_tree["results"]
    data = check_files(figure(field_figures[0], "latent_geometry"), plots.DOUBLE_COLUMN_IN)
    hist = data[data["item"] == "histogram"]
    counts = hist.groupby(["panel", "set"])["count"].sum()
    assert counts["norm", "target"] == N_FEWSHOT
    assert counts["norm", "id"] == N_BASE
    assert counts["norm", "discovered"] == N_DISCOVERED
    assert counts["dist_to_id", "target"] == N_FEWSHOT * N_BASE
    assert counts["angle_origin", "target"] == N_FEWSHOT * (N_FEWSHOT - 1) // 2
    assert counts["angle_origin", "discovered"] == N_DISCOVERED * N_FEWSHOT
    # each target's angles between pairs of the other targets
    assert counts["angle_pairs", "target"] == N_FEWSHOT * (N_FEWSHOT - 1) * (N_FEWSHOT - 2) // 2
    norms = np.linalg.norm(read_tensor_file(results / "latents.h5").x.reshape(N_FEWSHOT, -1).astype(float), axis=1)
    norm_bins = hist[(hist["panel"] == "norm") & (hist["set"] == "target")]
    assert norm_bins["left"].min() <= norms.min() and norm_bins["right"].max() >= norms.max()

    acceptance = read_attrs(results / "discovered_latents.h5")["acceptance"]
    windows = data[data["item"] == "window"].set_index("panel")
    geometry = pd.read_csv(results / "geometry.csv").set_index("statistic")
    for criterion in ("dist_to_id", "angle_origin", "angle_pairs"):
        half = acceptance["tolerance"][criterion] * acceptance["target_std"][criterion]
        assert windows.loc[criterion, "value"] == pytest.approx(acceptance["target_mean"][criterion])
        assert windows.loc[criterion, "left"] == pytest.approx(acceptance["target_mean"][criterion] - half)
        assert windows.loc[criterion, "right"] == pytest.approx(geometry.loc[f"window_{criterion}", "max"])
    import h5py

    with h5py.File(results / "discovered_latents.h5", "r") as h5:
        criteria = h5["criteria"][()]
    ticks = data[data["item"] == "criterion"]
    for k, criterion in enumerate(("dist_to_id", "angle_origin", "angle_pairs")):
        np.testing.assert_allclose(ticks[ticks["panel"] == criterion]["value"], criteria[:, k])


def test_latent_geometry_without_discovered_latents(field_tree, tmp_path):
    files = plots.plot_latent_geometry(field_tree["results"] / "latents.h5", field_tree["base"] / "id_latents.h5",
                                       None, tmp_path / "geometry")
    data = check_files(files, plots.DOUBLE_COLUMN_IN)
    assert set(data["item"]) == {"histogram"} and set(data["set"]) == {"target", "id"}


# ----------------------------------------------------------------------------- sample grids


def test_sample_grid_shows_every_set_in_habing(field_tree, field_figures):
    record, sets = field_tree["record"], field_tree["sets"]
    data = check_files(figure(field_figures[0], "samples"), plots.DOUBLE_COLUMN_IN)  # the default 8 columns
    assert list(dict.fromkeys(data["set"])) == ["fewshot", "discovered", "base_samples", "baseline_samples"]
    expected = {"fewshot": read_tensor_file(field_tree["tensors"], split="fewshot").x}
    expected.update({name: read_tensor_file(path).x for name, path in sets.items()})
    for name, x in expected.items():
        rows = data[data["set"] == table_set_name(name)]
        shown = record.to_physical(x[:8])[:, 0]
        assert len(rows) == min(8, len(x))
        np.testing.assert_allclose(rows["mean"], shown[:len(rows)].mean(axis=(1, 2)), rtol=1e-6)
        np.testing.assert_allclose(rows["max"], shown[:len(rows)].max(axis=(1, 2)), rtol=1e-6)
    assert set(data["units"]) == {"Habing"}
    assert data["vmin"].iloc[0] == pytest.approx(10 ** record.lo[0])
    assert plots.quantity_label(record) == "$G_0$ [Habing]"
    assert ((data["min"] >= data["vmin"] * (1 - 1e-6)) & (data["max"] <= data["vmax"] * (1 + 1e-6))).all()


def test_sample_grid_of_galaxies_is_their_8bit_rgb(galaxy_tree, galaxy_figures):
    out, _ = galaxy_figures
    data = check_files(figure(out, "samples"), plots.SINGLE_COLUMN_IN)  # 4 columns: the few-shot targets
    record = galaxy_tree["record"]
    for name, path in [("fewshot", galaxy_tree["tensors"]), *galaxy_tree["sets"].items()]:
        x = read_tensor_file(path, split="fewshot" if name == "fewshot" else None).x
        rgb = to_rgb_uint8(record.to_physical(x), record)
        np.testing.assert_allclose(data[data["set"] == table_set_name(name)]["rgb_mean"],
                                   rgb.mean(axis=(1, 2, 3)))
    assert set(data["units"]) == {"8-bit value [0-255]"}


def test_unknown_kind_is_refused(galaxy_tree, tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        plots.plot_sample_grids(galaxy_tree["tensors"], {}, tmp_path / "grid", kind="spiral")


# ----------------------------------------------------------------------------- field statistics


def test_power_spectra_are_those_of_power_spectra_csv_with_comparison_slopes(field_tree, field_figures):
    results = field_tree["results"]
    data = check_files(figure(field_figures[0], "power_spectra"), plots.SINGLE_COLUMN_IN)
    spectra = pd.read_csv(results / "power_spectra.csv")
    assert set(data["set"]) == set(spectra["set"]) - {"validation"} == {"fewshot", "test", "discovered", "base_samples",
                                                       "baseline_samples"}
    merged = spectra.merge(data, on=["set", "k"], suffixes=("", "_plotted"))
    assert len(merged) == (spectra["set"] != "validation").sum()  # the figure leaves the validation maps out
    np.testing.assert_array_equal(merged["power_mean"], merged["power_mean_plotted"])
    np.testing.assert_array_equal(merged["power_std"], merged["power_std_plotted"])
    comparison = pd.read_csv(results / "comparison.csv")
    slopes = comparison[comparison["statistic"] == "power_slope_difference"].set_index("set")
    plotted = data.groupby("set")["slope"].first()
    for name in ("discovered", "base_samples", "baseline_samples", "fewshot"):
        assert plotted[name] == slopes.loc[name, "set_value"]
    assert plotted["test"] == slopes["real_value"].iloc[0]  # the reference of every statistic
    real = data[data["set"] == "test"]
    np.testing.assert_allclose(real["ratio_to_test"], 1.0)


def test_pdfs_integrate_to_one_over_every_pixel(field_tree, field_figures):
    data = check_files(figure(field_figures[0], "pdfs"), plots.SINGLE_COLUMN_IN)
    sizes = {"fewshot": N_FEWSHOT, "test": N_TEST, "discovered": N_DISCOVERED, "base_samples": N_BASE,
             "baseline_samples": 4}
    assert list(dict.fromkeys(data["set"])) == list(sizes)
    record = field_tree["record"]
    for name, n in sizes.items():
        rows = data[data["set"] == name]
        assert (rows["n_values"] == n * 64).all() and (rows["n_in_range"] == n * 64).all()
        assert np.sum(rows["density"] * (rows["right"] - rows["left"])) == pytest.approx(1.0)
        assert rows["left"].min() == pytest.approx(record.lo[0]) and rows["right"].max() == pytest.approx(
            record.hi[0])


def test_memorization_histograms_count_every_sample_and_match_comparison_csv(field_tree, field_figures):
    data = check_files(figure(field_figures[0], "memorization"), plots.SINGLE_COLUMN_IN)
    comparison = pd.read_csv(field_tree["results"] / "comparison.csv")
    scores = comparison[comparison["statistic"] == "near_copy_share"].set_index("set")["value"]
    sizes = {"test": N_TEST, "discovered": N_DISCOVERED, "base_samples": N_BASE, "baseline_samples": 4}
    for name, n in sizes.items():
        rows = data[data["set"] == name]
        assert rows["count"].sum() == n and (rows["n"] == n).all()
        if name != "test":  # the test maps are the comparison's reference, not a judged set
            assert rows["score"].iloc[0] == pytest.approx(scores[name])
    # the ratios are those of log10 G0, the features of the statistics
    record = field_tree["record"]
    fewshot = record.to_physical(read_tensor_file(field_tree["tensors"], split="fewshot").x)
    samples = record.to_physical(read_tensor_file(field_tree["sets"]["base_samples"]).x)
    log10 = lambda x: np.log10(x).reshape(len(x), -1)  # noqa: E731
    ratios = nearest_neighbour_ratios(samples, fewshot, log10)["ratio"]
    rows = data[data["set"] == "base_samples"]
    expected, _ = np.histogram(ratios, bins=np.r_[rows["left"].to_numpy(), 1.0])
    np.testing.assert_array_equal(rows["count"], expected)
    # the near-copies are caught: every one of them below the threshold
    copies = data[data["set"] == "baseline_samples"]
    assert copies["score"].iloc[0] == 1.0
    assert copies[copies["right"] <= 1 / 3 + 1e-12]["count"].sum() == 4


# ----------------------------------------------------------------------------- galaxies, all figures


def test_morphology_draws_the_tables_of_rule_morphology(galaxy_tree, galaxy_figures):
    out, written = galaxy_figures
    data = check_files(figure(out, "morphology"), plots.DOUBLE_COLUMN_IN)
    assert data.groupby("set").size().to_dict() == {"fewshot": 4, "test": 2, "discovered": 3, "base_samples": 3}
    for name in ("fewshot", "base_samples"):  # the plotted values are the table's, not measured again
        table = pd.read_csv(galaxy_tree["results"] / "morphology" / f"{name}.csv")
        np.testing.assert_array_equal(data[data["set"] == name]["gini"].to_numpy(), table["gini"].to_numpy())
    real = data[data["set"].isin(["fewshot", "test"])]
    assert not real["failed"].any()  # clean blobs are measured
    assert real["gini"].between(0, 1).all() and np.isfinite(real["m20"]).all()
    assert (data["failed"] == data["error"].fillna("").ne("")).all()


def test_make_all_figures_draws_what_applies_to_each_kind(field_figures, galaxy_figures):
    _, galaxy_files = galaxy_figures
    galaxy_stems = {p.stem for p in galaxy_files}
    assert galaxy_stems == {"reconstruction", "samples", "morphology", "memorization"}  # no latents in this tree
    out, field_files = field_figures
    assert {p.stem for p in field_files} == {"reconstruction", "latent_geometry", "samples", "power_spectra",
                                             "pdfs", "memorization", "jacobian", "reproducibility"}
    assert len(field_files) == 24 and all(p.exists() for p in field_files)
    # the baseline set is found and shown when the run made one; the galaxy run made none
    assert "baseline_samples" in set(pd.read_csv(out / "samples.csv")["set"])
    assert "baseline_samples" not in set(pd.read_csv(galaxy_figures[0] / "samples.csv")["set"])


def test_the_empirical_denoiser_returns_the_targets_and_scores_the_models_against_them(field_tree, field_figures):
    """The few-shot set's optimal denoiser, sampled from the base samples' noise, lands on targets."""
    from scipy.spatial.distance import cdist

    results, tensors = field_tree["results"], field_tree["tensors"]
    empirical = read_tensor_file(results / "empirical_samples.h5")
    base = read_tensor_file(field_tree["base"] / "samples.h5")
    targets = read_tensor_file(tensors, split="fewshot").x.reshape(N_FEWSHOT, -1)
    assert empirical.names == base.names[: N_BASE - 2]  # the same initial noise, by name
    d = cdist(empirical.x.reshape(len(empirical.x), -1), targets)
    spacing = cdist(targets, targets)[np.triu_indices(N_FEWSHOT, 1)].min()
    assert d.min(axis=1).max() < 0.02 * spacing  # every sample is one of the targets
    comparison = pd.read_csv(results / "comparison.csv")
    rows = comparison[comparison["statistic"] == "rpscore_vs_empirical"].set_index("set")
    # the base samples pair by name; the stand-in baseline (ft_*) shares no noise with it
    assert list(rows.index) == ["base_samples"] and rows.loc["base_samples", "n_set"] == N_BASE - 2
    assert 0 <= rows.loc["base_samples", "value"] <= 1
    drawn = pd.read_csv(field_figures[0] / "reproducibility.csv")
    assert set(drawn["set"]) == {"base_samples", "baseline_samples", "empirical"} - {"baseline_samples"}
    assert drawn.loc[drawn["set"] == "empirical", "value"].isna().all()
    jac = pd.read_csv(field_figures[0] / "jacobian.csv")
    assert set(jac["set"]) == {"fewshot", "in_domain"} and list(jac["k"].unique()) == [4]


def test_figures_are_byte_for_byte_reproducible(field_tree, field_figures, tmp_path):
    again = plots.plot_memorization(field_tree["tensors"], field_tree["sets"], tmp_path / "memorization")
    for first, second in zip(figure(field_figures[0], "memorization"), again):
        assert first.read_bytes() == second.read_bytes(), first.name


def test_record_kinds_and_labels():
    field = NormalizationRecord("log10", {}, [0.0], [4.0], ["Habing"], ["field"], channel_mode="replicate")
    assert plots.style._resolve_kind(None, field) == "field"
    galaxy = NormalizationRecord("linear", {}, [0.0] * 3, [255.0] * 3, [""] * 3, ["R", "G", "B"])
    assert (plots.style._resolve_kind(None, galaxy) == "galaxy"
            and plots.style._resolve_kind("galaxies", galaxy) == "galaxy")
    named = NormalizationRecord("asinh", {"softening": 1.0}, [0.0], [3.0], ["MJy/sr"], ["I_nu"],
                                channel_mode="replicate")
    assert plots.quantity_label(named) == "I_nu [MJy/sr]"
    assert plots.style._field_norm(named).vmax == pytest.approx(np.sinh(3.0))


def test_novelty_fidelity_sweep_and_figure(field_tree, tmp_path):
    from discoverydiff.discovery.sweep import novelty_fidelity_sweep

    results = field_tree["results"]
    rng = np.random.default_rng(7)
    model = analytic_model("analytic_gaussian", np.tanh(rng.normal(0, 0.5, (200, 3, 8, 8))), description="test")
    references = {"base_samples": field_tree["base"] / "samples.h5"}
    table = novelty_fidelity_sweep(field_tree["tensors"], results / "latents.h5", field_tree["base"] / "id_latents.h5",
                                   model, DDIMSettings(900, 10), RunOptions(batch_size=16),
                                   {"n_ref": 4, "tolerance": 4.0, "max_candidates": 50_000}, {}, "field",
                                   values=[0.1, 0.4], n_samples=3, reference_sets=references)
    sweep = table[table["set"] == "sweep"]
    assert list(sweep["value"]) == [0.1, 0.4] and (sweep["error"] == "").all()
    # each setting is measured as rule stats measures the discovered set, against the validation maps
    assert sweep["fidelity"].gt(0).all() and sweep["near_copy_share"].between(0, 1).all()
    assert set(table["set"]) == {"sweep", "base_samples", "fewshot"}
    table.to_csv(results / "novelty_sweep.csv", index=False)
    files = plots.make_figure("novelty_fidelity", results, field_tree["base"], tmp_path, "field")
    data = pd.read_csv(files.data)
    assert list(data[data["set"] == "sweep"]["value"]) == [0.1, 0.4]
    from discoverydiff.stats import dataset_statistics

    direct = dataset_statistics(field_tree["tensors"], references, "field", {"bootstrap": 0, "permutations": 0},
                                n_samples=3, reference="validation").comparison
    base = direct.query("set == 'base_samples' and statistic == 'pdf_w1_log10'")["value"].item()
    assert data[data["set"] == "base_samples"]["fidelity"].item() == pytest.approx(base)
