"""A paper config pair runs end to end, as shipped, at 256x256: config/paper/model_ddpm_celebahq.yaml and
data_radiation.yaml with their FILL IN paths pointed at a small random-weight UNet2DModel of the DDPM-256 layout
(six levels, attention at 16x16, narrow) and synthetic G0 maps; a third config file makes only the sizes and
step counts tiny (and the acceptance tolerance wider, which a random-weight model needs). The run writes every
result file docs/paper.md names for the radiation domain, with the paper's discovery scheme on record."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import h5py
import yaml
from dryrun import REPO, copy_repository

from discoverydiff.store import read_tensor_file

# Sizes and step counts, and a wider acceptance window (a random-weight model's 6 inverted maps give
# no candidate within 1 spread of their angle at the origin): the scheme, t0 and the model stay the paper configs'.
TINY = {
    "precision": "fp32",
    "threads": {"torch": 1, "numeric": 1},
    "diffusion": {"n_inv_step": 3, "batch_size": 4, "compile": False, "n_base_samples": 6},
    "discovery": {"n_samples": 4, "max_candidates": 20000, "tolerance": 2.0},
    "baseline": {"steps": 2, "batch_size": 2},
    "jacobian": {"timesteps": [900], "points": 1, "k": 1, "oversample": 0, "power_iterations": 0, "batch": 2},
    "datasets": {"radiation": {"n_fewshot": 6, "n_validation": 2}},
    "stats": {"bootstrap": 5, "source_check": {"n_reference": 8}},
}


def tiny_ddpm256(path: Path) -> None:
    """A diffusers checkpoint directory with the DDPM-256 block layout at 1/8 of its widths, random weights."""
    import torch
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    UNet2DModel(sample_size=256, in_channels=3, out_channels=3, layers_per_block=1, norm_num_groups=8,
                block_out_channels=(16, 16, 32, 32, 64, 64),
                down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4).save_pretrained(path)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
    scheduler.save_pretrained(path)


def paper_outputs(dataset: str) -> list[str]:
    """The result files docs/paper.md names for one dataset, and the shared ones (``<dataset>`` filled in)."""
    text = (REPO / "docs" / "paper.md").read_text()
    paths = set(re.findall(r"`(results/[^`\s*]+\.\w+)`", text.replace("<dataset>", dataset)))
    return sorted(p for p in paths if p.split("/")[1] in (dataset, "base_model", "provenance"))


def test_the_paper_ddpm_radiation_pair_runs_end_to_end_at_256px(tmp_path):
    from discoverydiff.demo import write_radiation_demo

    copy = copy_repository(tmp_path / "repo")
    tiny_ddpm256(tmp_path / "ddpm256")
    write_radiation_demo(tmp_path / "radiation", n_fits=6, n_hdf5=4, size=256, slope=-3.3, n_stars=3, seed=1)
    with h5py.File(tmp_path / "radiation" / "stack.h5") as f:
        assert f["G0"].shape == (4, 256, 256)
    replace = {"/path/to/ddpm-celebahq-256": str(tmp_path / "ddpm256"),
               "/path/to/radiation/*.fits": str(tmp_path / "radiation" / "fits" / "*.fits"),
               "/path/to/radiation/maps.h5": str(tmp_path / "radiation" / "stack.h5")}
    for name in ("model_ddpm_celebahq.yaml", "data_radiation.yaml"):
        path = copy / "config" / "paper" / name
        text = path.read_text()
        for placeholder, real in replace.items():
            text = text.replace(placeholder, real)
        assert not [line for line in text.splitlines() if "FILL IN" in line and "/path/to/" in line], name
        path.write_text(text)
    (copy / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    expected = paper_outputs("radiation")
    assert len(expected) >= 10 and "results/radiation/comparison.csv" in expected
    run = subprocess.run([sys.executable, "-m", "snakemake", "all", *expected, "--cores", "2", "--configfile",
                          "config/paper/model_ddpm_celebahq.yaml", "config/paper/data_radiation.yaml", "tiny.yaml"],
                         cwd=copy, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-5000:]
    missing = [p for p in expected if not (copy / p).exists()]
    assert not missing, missing
    ran = yaml.safe_load((copy / "results/provenance/config.yaml").read_text())
    assert ran["model"]["resolution"] == 256 and (ran["diffusion"]["t0"], ran["discovery"]["n_slerp"]) == (900, 20)
    assert ran["discovery"]["scheme"] == "prior" and ran["discovery"]["screen"]["oversample"] == 1
    samples = read_tensor_file(copy / "results/radiation/samples.h5")
    assert samples.x.shape == (4, 3, 256, 256) and samples.attrs["model"].startswith("diffusers:")
