"""The Snakemake workflow itself, run on tiny configs in a scratch working directory."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from astropy.io import fits
from PIL import Image

from discoverydiff.plots import figure_names
from discoverydiff.store import read_tensor_file

REPO = Path(__file__).resolve().parents[1]

TINY_DEMO = {
    "seed": 5,
    "model": {"source": "analytic_gaussian", "resolution": 16, "channels": 3,
              "source_images": {"kind": "natural_patches", "n": 256}},
    "diffusion": {"t0": 900, "n_inv_step": 20, "batch_size": 8, "n_base_samples": 12},
    "discovery": {"n_samples": 4, "tolerance": 2.0, "max_candidates": 20000},
    "jacobian": {"timesteps": [100, 900], "points": 1, "k": 4, "oversample": 2, "power_iterations": 0},
    "stats": {"bootstrap": 50, "permutations": 50},
    "demo": {"radiation": {"n_fits": 6, "n_hdf5": 6, "size": 64, "slope": -3.0, "n_stars": 2},
             "galaxies": {"n": 10, "size": 128}},
    "datasets": {
        "radiation": {
            "generate": "radiation",
            "inputs": [{"format": "fits", "pattern": "resources/demo/radiation/fits/*.fits"},
                       {"format": "hdf5", "pattern": "resources/demo/radiation/stack.h5", "dataset": "G0"}],
            "channels": "replicate", "n_fewshot": 6, "n_validation": 1,
            "normalize": {"transform": "log10", "gaussianize": 9, "percentiles": [0, 100]},
            "discovery": {"min_weight": 0.45, "screen": {"select": "set", "oversample": 3}},
        },
        "galaxies": {
            "kind": "galaxy",
            "generate": "galaxies",
            "inputs": [{"format": "image", "pattern": "resources/demo/galaxies/images/*.jpg"}],
            "crop": {"fraction": 0.5}, "resample": "lanczos",
            "normalize": {"transform": "linear", "lo": 0, "hi": 255}, "n_fewshot": 6, "n_validation": 1,
        },
    },
}


def snakemake_command(workdir: Path, config: dict, *args: str) -> tuple[list[str], dict]:
    """The command line and environment of a Snakemake run of this workflow in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYTHONPATH=str(REPO),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args]
    return cmd, env


def snakemake(workdir: Path, config: dict, *args: str) -> subprocess.CompletedProcess:
    cmd, env = snakemake_command(workdir, config, *args)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def test_demo_runs_through_discovery_and_is_then_up_to_date(tmp_path):
    run = snakemake(tmp_path, TINY_DEMO)
    assert run.returncode == 0, run.stderr[-3000:]
    rad = read_tensor_file(tmp_path / "results/radiation/tensors.h5")
    gal = read_tensor_file(tmp_path / "results/galaxies/tensors.h5")
    assert rad.x.shape == (12, 3, 16, 16) and (rad.split == "fewshot").sum() == 6
    assert gal.x.shape == (10, 3, 16, 16) and (gal.split == "fewshot").sum() == 6
    assert rad.attrs["normalization"]["units"] == ["Habing"]
    assert len(rad.attrs["normalization"]["gaussianize"]["knots"][0]) == 9  # normal scores of the few-shot maps
    with fits.open(tmp_path / "results/radiation/physical/base_samples.fits") as hdul:
        # FITS maps (with a WCS) and HDF5 maps (none) share no WCS, so none is invented
        assert hdul[1].header["BUNIT"] == "Habing" and "CTYPE1" not in hdul[1].header
    assert "power_slope_difference" in set(pd.read_csv(tmp_path / "results/radiation/comparison.csv")["statistic"])
    assert len(rad.attrs["config_sha256"]) == 64
    assert "12 maps (6 few-shot, 1 validation, 5 test, 0 unused)" in (
        tmp_path / "results/radiation/logs/ingest.log").read_text()
    latents = read_tensor_file(tmp_path / "results/radiation/latents.h5")
    assert latents.x.shape == (6, 3, 16, 16) and latents.attrs["n_steps"] == 20
    assert latents.attrs["model"].startswith("analytic_gaussian:natural_patches(n=256,seed=5)")
    table = pd.read_csv(tmp_path / "results/galaxies/reconstruction.csv")
    assert len(table) == 6 and table["psnr_db"].min() > 15
    assert "mean PSNR" in (tmp_path / "results/galaxies/logs/reconstruction_table.log").read_text()
    assert read_tensor_file(tmp_path / "results/base_model/id_latents.h5").x.shape == (12, 3, 16, 16)
    for dataset in ("radiation", "galaxies"):
        samples = read_tensor_file(tmp_path / f"results/{dataset}/samples.h5")
        assert samples.x.shape == (4, 3, 16, 16) and samples.attrs["kind"] == "samples"
        discovered = read_tensor_file(tmp_path / f"results/{dataset}/discovered_latents.h5")
        assert 0 < discovered.attrs["acceptance"]["acceptance_rate"] <= 1
        # radiation's own min_weight wins over the search; galaxies' is the one rule settings chose on
        # the validation maps from the default grid
        # (radiation fixes every knob of the grid: it has no settings job)
        settings = tmp_path / f"results/{dataset}/settings.yaml"
        assert settings.exists() == (dataset == "galaxies")
        chosen = {"min_weight": 0.45, "screen.oversample": 3} if dataset == "radiation" else \
            yaml.safe_load(settings.read_text())["chosen"]
        assert chosen["min_weight"] in (0.45, 0.2, 0.4)
        assert discovered.attrs["acceptance"]["min_weight"] == chosen["min_weight"]
        oversample = discovered.attrs["acceptance"]["screening"]["oversample"]
        assert oversample == chosen["screen.oversample"] and oversample in (1, 3)
        # radiation's own screening by set; galaxies keep the default where they screen
        if oversample > 1:
            select = discovered.attrs["acceptance"]["screening"]["select"]
            assert select == {"radiation": "set", "galaxies": "each"}[dataset]
        comparison = pd.read_csv(tmp_path / f"results/{dataset}/comparison.csv")
        # closed form: no baseline; the controls of discovery, the few-shot and validation maps, all against
        # the test maps; the few-shot maps are their own novelty references
        generated = {"discovered", "discovered_unscreened", "discovered_prior", "base_samples"}
        assert set(comparison["set"]) == generated | {"fewshot", "validation"}
        assert set(comparison["reference"].dropna()) <= {"test", "base_samples", "empirical"}
        assert comparison.groupby("set")["n_set"].max()[sorted(generated)].eq(4).all()  # every set at n_samples
        assert "near_copy_share" not in set(comparison[comparison["set"] == "fewshot"]["statistic"])
        assert {"near_copy_share", "mscore", "novelty_w1", "source_share"} <= set(comparison["statistic"])
        others = comparison[comparison["set"] != "discovered"]
        assert others["p_vs_discovered"].notna().any() and others["delta_vs_discovered"].notna().any()
        two_sample = pd.read_csv(tmp_path / f"results/{dataset}/two_sample.csv")
        assert set(two_sample["set"]) <= generated | {"fewshot", "validation"}
        compute = pd.read_csv(tmp_path / f"results/{dataset}/compute.csv").set_index("set")
        # screening's previews are discovery's cost beyond the unscreened control's decoding
        more = compute.loc["discovered", "unet_forwards"] - compute.loc["discovered_unscreened", "unet_forwards"]
        assert more > 0 if oversample > 1 else more == 0
        novelty = pd.read_csv(tmp_path / f"results/{dataset}/novelty.csv")
        sizes = {"discovered": 4, "discovered_unscreened": 4, "discovered_prior": 4, "base_samples": 4,
                 "validation": 1}
        assert novelty.groupby("set").size().to_dict() == sizes
        with fits.open(tmp_path / f"results/{dataset}/physical/samples.fits") as hdul:
            assert len(hdul) == 6 and hdul[1].data.shape[-2:] == (16, 16)
            assert hdul[-1].name == "CLIPPED" and hdul[-1].data.shape[0] == 4
        geometry = pd.read_csv(tmp_path / f"results/{dataset}/geometry.csv")
        assert {"norm", "angle_pairs", "window_angle_pairs", "separation"} <= set(geometry["statistic"])
    assert (tmp_path / "results/radiation/benchmarks/invert_1-of-1.tsv").exists()
    # torch rules follow the host (threads.torch null): one thread per model job on this CPU-only host,
    # two jobs at once on --cores 2 (cores per GPU on a GPU host), and the job's torch uses them
    from discoverydiff.jobs import gpu_count, torch_threads

    expected = torch_threads(None, 2, gpu_count())
    for log in ("radiation/logs/invert_1-of-1.log", "galaxies/logs/jacobian.log",
                "base_model/logs/sample_base_1-of-1.log"):
        text = (tmp_path / "results" / log).read_text()
        assert f"threads: {expected}" in text and f"torch threads: {expected}" in text, log
    stats_log = (tmp_path / "results/radiation/logs/stats.log").read_text()
    assert "threads: 2" in stats_log  # numeric rules: default 2
    _check_figures(tmp_path)
    again = snakemake(tmp_path, TINY_DEMO, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    report = snakemake(tmp_path, TINY_DEMO, "--report", str(tmp_path / "report.zip"))
    assert report.returncode == 0, report.stderr[-3000:]
    with zipfile.ZipFile(tmp_path / "report.zip") as archive:
        names = archive.namelist()
    files = [Path(n).name for n in names if "/data/raw/" in n]  # the report stores report/data/raw/<hash>/<name>
    n_figures = len(figure_names("field")) + len(figure_names("galaxy"))
    assert sum(n.endswith(".png") for n in files) == n_figures, files
    for name in ("samples.png", "comparison.csv", "reconstruction.csv", "geometry.csv"):
        assert files.count(name) == 2, (name, files)  # one per dataset
    assert {"config.yaml", "software.tsv"} <= set(files)


def _check_figures(root: Path):
    """Every figure of every dataset exists, is non-empty, and its sidecar holds this run's numbers."""
    for dataset, kind in (("radiation", "field"), ("galaxies", "galaxy")):
        figures = root / f"results/{dataset}/figures"
        assert sorted(p.name for p in figures.iterdir()) == sorted(
            f"{name}.{ext}" for name in figure_names(kind) for ext in ("pdf", "png", "csv"))
        for path in figures.iterdir():
            assert path.stat().st_size > 100, path
        with Image.open(figures / "samples.png") as png:
            assert png.size[0] > 500
        assert (figures / "reconstruction.pdf").read_bytes().startswith(b"%PDF")
        drawn = pd.read_csv(figures / "reconstruction.csv")
        table = pd.read_csv(root / f"results/{dataset}/reconstruction.csv").set_index("name")
        np.testing.assert_allclose(drawn["psnr_db"], table.loc[drawn["name"], "psnr_db"], rtol=1e-12)
    comparison = pd.read_csv(root / "results/radiation/comparison.csv")
    slopes = comparison[comparison["statistic"] == "power_slope_difference"].set_index("set")["set_value"]
    drawn = pd.read_csv(root / "results/radiation/figures/power_spectra.csv").groupby("set")["slope"].first()
    shown = [name for name in slopes.index if name in drawn.index]  # the figure leaves the controls out
    assert set(shown) == {"discovered", "base_samples", "fewshot"}
    np.testing.assert_allclose(drawn[shown], slopes[shown], rtol=1e-12)
    software = pd.read_csv(root / "results/provenance/software.tsv", sep="\t").set_index("package")["version"]
    assert software["torch"] == torch.__version__.split("+")[0] or software["torch"] == torch.__version__
    config = yaml.safe_load((root / "results/provenance/config.yaml").read_text())
    assert config["seed"] == TINY_DEMO["seed"] and config["datasets"]["galaxies"]["kind"] == "galaxy"


@pytest.mark.parametrize("edit,message", [
    (lambda c: c["datasets"]["galaxies"].update(n_fewshots=3), "'n_fewshots' was unexpected"),
    (lambda c: c["datasets"]["radiation"].update(normalize={"transform": "log11"}), "'log11' is not one of"),
    (lambda c: c["datasets"].update({"bad name!": c["datasets"]["radiation"]}),
     "'bad name!' does not match any of the regexes"),
])
def test_invalid_config_stops_naming_the_key(tmp_path, edit, message):
    config = yaml.safe_load(yaml.safe_dump(TINY_DEMO))
    edit(config)
    run = snakemake(tmp_path, config, "-n")
    assert run.returncode != 0
    assert message in run.stdout + run.stderr


def _user_dataset(tmp_path, on_bad_input):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        m = np.exp(rng.normal(0, 1, (32, 32)))
        if i == 2:
            m[4, 4] = np.nan
        fits.PrimaryHDU(m).writeto(data / f"m{i}.fits", overwrite=True)
    return {"model": {"resolution": 16}, "datasets": {"user": {
        "inputs": [{"format": "fits", "pattern": "data/*.fits"}], "units": "Habing",
        "channels": "replicate", "n_fewshot": 2, "n_validation": 0, "on_bad_input": on_bad_input}}}


def test_bad_input_fails_the_job_naming_the_file_and_leaves_no_output(tmp_path):
    run = snakemake(tmp_path, _user_dataset(tmp_path, "fail"), "results/user/tensors.h5")
    assert run.returncode != 0
    assert "data/m2.fits: 1 NaN (or BLANK) and 0 infinite pixel(s)" in run.stdout + run.stderr
    assert not (tmp_path / "results/user/tensors.h5").exists()
    assert not (tmp_path / "results/user/rejected.csv").exists()


def test_skip_records_the_bad_file_and_ingests_the_rest(tmp_path):
    run = snakemake(tmp_path, _user_dataset(tmp_path, "skip"), "results/user/tensors.h5")
    assert run.returncode == 0, run.stderr[-3000:]
    assert read_tensor_file(tmp_path / "results/user/tensors.h5").x.shape[0] == 3
    assert "data/m2.fits,1 NaN (or BLANK)" in (tmp_path / "results/user/rejected.csv").read_text()


def test_sharded_run_gives_the_one_shard_results(tmp_path, monkeypatch):
    """config shards: 3 splits inversion, reconstruction and sampling into 3 jobs per file,
    gathered into exactly the files (and so the tables) of a one-shard run."""
    import copy

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # the same reduction order in both runs
        monkeypatch.setenv(var, "1")
    targets = [f"results/{d}/{name}" for d in TINY_DEMO["datasets"] for name in ("reconstruction.csv",
                                                                                  "comparison.csv")]
    config = copy.deepcopy(TINY_DEMO)
    config["diffusion"]["eta"] = 0.5  # fresh noise per step: also the per-image generators are sharded right
    config["diffusion"]["batch_size"] = 2  # shards hold whole batches: 6 few-shot rows are 3 batches
    config["threads"] = {"torch": 1, "numeric": 1}
    config["evaluation"] = {"controls": ["discovered_unscreened"]}  # its decoding is sharded too
    runs = {}
    for shards in (1, 3):
        config["shards"] = shards
        run = snakemake(tmp_path / f"shards{shards}", config, *targets)
        assert run.returncode == 0, run.stderr[-3000:]
        runs[shards] = tmp_path / f"shards{shards}"
    for group, rule in (("radiation", "invert"), ("galaxies", "reconstruct"), ("base_model", "sample_base")):
        jobs = sorted((runs[3] / "results" / group / "benchmarks").glob(f"{rule}_*-of-3.tsv"))
        assert len(jobs) == 3, (group, rule)  # three jobs ran, and their shards were temporary:
        assert not list((runs[3] / "results" / group / "shards").glob("*.h5")), group
    files = sorted(p.relative_to(runs[1]) for p in (runs[1] / "results").rglob("*.h5") if "shards" not in p.parts)
    assert len(files) >= 9
    for rel in files:
        a, b = read_tensor_file(runs[1] / rel), read_tensor_file(runs[3] / rel)
        np.testing.assert_array_equal(a.x, b.x, err_msg=str(rel))
        assert a.names == b.names, rel
    for dataset in TINY_DEMO["datasets"]:
        for table in ("reconstruction.csv", "comparison.csv", "geometry.csv"):
            pd.testing.assert_frame_equal(pd.read_csv(runs[1] / "results" / dataset / table),
                                          pd.read_csv(runs[3] / "results" / dataset / table), check_exact=True)


def test_a_killed_run_leaves_no_half_written_output_and_resumes(tmp_path):
    """SIGKILL the whole run (Snakemake and its jobs) while the DDIM jobs write: no output is
    left half-written under its final name, and after ``--unlock`` the next run
    (rerun-incomplete, as the profiles set) finishes the work and leaves nothing to do."""
    import signal
    import time

    cmd, env = snakemake_command(tmp_path, TINY_DEMO, "results/radiation/reconstruction.csv")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    started = tmp_path / "results/radiation/logs/invert_1-of-1.log"
    deadline = time.monotonic() + 300
    while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before a DDIM job started"
    time.sleep(0.3)  # inside the inversion job
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (tmp_path / "results/radiation/reconstruction.csv").exists()
    for path in (tmp_path / "results").rglob("*.h5"):  # whatever exists under a final name is whole
        read_tensor_file(path)

    unlock = snakemake(tmp_path, TINY_DEMO, "--unlock")  # the killed Snakemake's lock stays behind
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    resumed = snakemake(tmp_path, TINY_DEMO, "results/radiation/reconstruction.csv")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(pd.read_csv(tmp_path / "results/radiation/reconstruction.csv")) == 6
    dry = snakemake(tmp_path, TINY_DEMO, "-n", "results/radiation/reconstruction.csv")
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-2000:]


def test_apply_threads_holds_torch_and_the_blas_pools():
    """A job started with more threads than its rule declares is held to the rule's count."""
    code = ("import numpy, torch, threadpoolctl; from discoverydiff.workflow import apply_threads; "
            "before = torch.get_num_threads(); apply_threads(1); "
            "print(before, torch.get_num_threads(), max(p['num_threads'] for p in threadpoolctl.threadpool_info()))")
    env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2", MKL_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "1", "1"]
