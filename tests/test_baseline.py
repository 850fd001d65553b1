"""The fine-tuning baseline: it trains a copy (the base model is untouched) and samples it."""

import numpy as np
import pytest
import torch
from tiny_inputs import tiny_eps_model

from discoverydiff.baseline import finetune_and_sample
from discoverydiff.diffusion import DDIMSettings
from discoverydiff.engine import RunOptions, sample_from_noise
from discoverydiff.errors import ConfigError
from discoverydiff.models import analytic_model
from discoverydiff.store import read_tensor_file, write_tensor_file


def test_finetune_trains_a_copy_and_samples(tmp_path):
    rng = np.random.default_rng(0)
    x = np.tanh(rng.normal(size=(6, 3, 8, 8))).astype(np.float32)
    images = write_tensor_file(tmp_path / "t.h5", x, [f"i{k}" for k in range(6)], "images",
                               {"normalization": None, "dataset": "d"}, split=["fewshot"] * 4 + ["test"] * 2)
    model = tiny_eps_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    finetune_and_sample(model, images, tmp_path / "b.h5", DDIMSettings(900, 5), RunOptions(batch_size=4),
                        {"steps": 8, "batch_size": 4, "lr": 1e-3}, n_samples=5, seed=1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # base model untouched
    out = read_tensor_file(tmp_path / "b.h5")
    assert out.x.shape == (5, 3, 8, 8) and out.attrs["finetune"]["steps"] == 8
    assert out.attrs["model"].startswith("finetuned(diffusers:tiny")
    assert out.attrs["dataset"] == "d"
    # the samples come from the fine-tuned copy: the base model from the same noise gives other images
    sample_from_noise(model.eval(), tmp_path / "base.h5", 5, DDIMSettings(900, 5), RunOptions(batch_size=4), seed=1)
    base = read_tensor_file(tmp_path / "base.h5").x
    assert np.abs(out.x - base).mean() > 1e-3
    assert out.attrs["finetune"]["last_loss"] != out.attrs["finetune"]["first_loss"]


def test_closed_form_models_cannot_be_finetuned(tmp_path):
    model = analytic_model("analytic_gaussian", np.zeros((4, 3, 8, 8), np.float32) + np.arange(4)[:, None, None, None])
    with pytest.raises(ConfigError, match="fine-tuning needs a neural base model"):
        finetune_and_sample(model, tmp_path / "x.h5", tmp_path / "b.h5", DDIMSettings(900, 5), RunOptions(), {}, 2)
