"""Tests of discoverydiff.training: source-domain patches, DDPM training, diffusers checkpoints."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler, UNet2DModel

from discoverydiff import training
from discoverydiff.diffusion import linear_betas
from discoverydiff.errors import InputError
from discoverydiff.training import (
    default_eps_fn,
    natural_image_patches,
    save_diffusers_checkpoint,
    small_unet_config,
    summarize_losses,
    train_eps_model,
)

SHIPPED = Path(__file__).resolve().parents[1] / "resources" / "models" / "demo_unet32"


def tiny_unet(seed: int = 0) -> UNet2DModel:
    """A ~50k-parameter UNet for 16x16 RGB images: fast enough for unit tests."""
    torch.manual_seed(seed)
    return UNet2DModel(
        sample_size=16,
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    )


def noisy_batch(images: np.ndarray, t: int, seed: int):
    """(x_t, eps, t) for all ``images`` at one timestep, with the DDPM forward process."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.as_tensor(images)
    eps = torch.randn(x0.shape, generator=g)
    alpha_bar = float(np.cumprod(1.0 - linear_betas())[t])
    x_t = alpha_bar**0.5 * x0 + (1.0 - alpha_bar) ** 0.5 * eps
    return x_t, eps, torch.full((x0.shape[0],), t)


def eps_mse(unet, x_t, eps, t) -> float:
    with torch.no_grad():
        return float(torch.mean((default_eps_fn(unet.eval(), x_t, t) - eps) ** 2))


@pytest.fixture(scope="module")
def patches16():
    return natural_image_patches(512, 16, seed=0)


@pytest.fixture(scope="module")
def trained_tiny(patches16):
    unet = tiny_unet()
    result = train_eps_model(unet, patches16, linear_betas(), steps=150, batch_size=32, lr=1e-3, seed=0,
                             progress=False, log_every=50)
    return unet, result


# ---------------------------------------------------------------------------- patches


def test_patches_shape_range_and_determinism():
    a = natural_image_patches(24, 16, seed=3)
    assert a.shape == (24, 3, 16, 16) and a.dtype == np.float32
    assert a.min() >= -1.0 and a.max() <= 1.0
    assert a.max() - a.min() > 1.0  # uses the range, not a constant
    np.testing.assert_array_equal(a, natural_image_patches(24, 16, seed=3))
    b = natural_image_patches(24, 16, seed=4)
    assert np.abs(a - b).mean() > 0.1


def test_patches_are_varied_natural_images(patches16):
    means = patches16.mean(axis=(2, 3))  # (N, 3) mean colour of each patch
    assert means.std(axis=0).min() > 0.1  # many scenes and colours, not one photo
    distinct = {tuple(np.round(m, 1)) for m in means}
    assert len(distinct) > 100
    # Natural images are smooth: neighbouring pixels are strongly correlated (noise would give ~0).
    x = patches16 - patches16.mean(axis=(2, 3), keepdims=True)
    corr = (x[..., 1:] * x[..., :-1]).sum() / np.sqrt((x[..., 1:] ** 2).sum() * (x[..., :-1] ** 2).sum())
    assert corr > 0.7
    # and the colour channels are not copies of one grey image
    assert np.abs(patches16[:, 0] - patches16[:, 2]).mean() > 0.05


def test_patches_need_no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("natural_image_patches tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    training._skimage_photo.cache_clear()
    for name in training.SKIMAGE_PHOTOS:
        photo = training._skimage_photo(name)
        assert photo.ndim == 3 and photo.shape[2] == 3 and photo.dtype == np.uint8
    assert natural_image_patches(4, 8, seed=0).shape == (4, 3, 8, 8)


def test_patches_reject_bad_scale_range():
    with pytest.raises(ValueError, match="scale_range"):
        natural_image_patches(2, 8, seed=0, scale_range=(0.5, 1.5))


# --------------------------------------------------------------------- schedule, model


def test_linear_betas_match_ddpm():
    betas = linear_betas()
    assert betas.shape == (1000,) and betas.dtype == np.float64
    assert betas[0] == 1e-4 and betas[-1] == pytest.approx(0.02, abs=1e-15)
    np.testing.assert_allclose(np.diff(betas), (0.02 - 1e-4) / 999, rtol=1e-9)
    # alpha_bar at T-1 of the DDPM linear schedule is about 4e-5: the end is almost pure noise
    assert np.cumprod(1.0 - betas)[-1] == pytest.approx(4.04e-5, rel=0.01)


def test_small_unet_config_builds_an_eps_predictor():
    config = small_unet_config(32, 3)
    unet = UNet2DModel(**config)
    n_params = sum(p.numel() for p in unet.parameters())
    assert 2e5 < n_params < 5e6  # small enough for the CPU demo and a < 20 MB checkpoint
    with torch.no_grad():
        out = unet(torch.zeros(2, 3, 32, 32), torch.tensor([0, 999])).sample
    assert out.shape == (2, 3, 32, 32)
    for width in config["block_out_channels"]:
        assert width % config["norm_num_groups"] == 0
    with pytest.raises(ValueError, match="divisible by 4"):
        small_unet_config(30)


def test_default_eps_fn_handles_tensor_and_learned_sigma_outputs():
    class LearnedSigma(torch.nn.Module):  # ADM-style: returns a tensor of (eps, variance) channels
        def forward(self, x, t):
            return torch.cat([x + 1.0, torch.full_like(x, 7.0)], dim=1)

    x = torch.zeros(2, 3, 4, 4)
    eps = default_eps_fn(LearnedSigma(), x, torch.tensor([1, 2]))
    assert eps.shape == (2, 3, 4, 4)
    assert torch.all(eps == 1.0)


# ---------------------------------------------------------------------------- training


def test_training_reduces_the_loss(trained_tiny):
    _, result = trained_tiny
    loss = np.asarray(result["loss"])
    assert result["steps"] == 150 and loss.shape == (150,) and result["seconds"] > 0
    assert np.all(np.isfinite(loss))
    assert loss[-30:].mean() < 0.8 * loss[:30].mean()


def test_trained_model_predicts_eps_better_than_untrained(trained_tiny):
    unet, _ = trained_tiny
    held_out = natural_image_patches(64, 16, seed=99)
    x_t, eps, t = noisy_batch(held_out, t=300, seed=5)
    trained = eps_mse(unet, x_t, eps, t)
    untrained = eps_mse(tiny_unet(), x_t, eps, t)
    assert trained < 0.25 * untrained
    assert trained < 0.3  # predicting zero would give 1


def test_training_is_bitwise_reproducible_on_cpu(patches16):
    def run(seed):
        unet = tiny_unet()
        result = train_eps_model(unet, patches16, linear_betas(), steps=5, batch_size=8, seed=seed, progress=False)
        return unet, result["loss"]

    a, loss_a = run(seed=0)
    b, loss_b = run(seed=0)
    c, _ = run(seed=1)
    assert loss_a == loss_b
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_ema_weights_are_copied_into_the_model(patches16):
    def run(ema_decay):
        unet = tiny_unet()
        train_eps_model(unet, patches16, linear_betas(), steps=20, batch_size=8, ema_decay=ema_decay, progress=False)
        return torch.cat([p.detach().flatten() for p in unet.parameters()])

    initial = torch.cat([p.detach().flatten() for p in tiny_unet().parameters()])
    last, averaged = run(None), run(0.999)
    # the average lags behind the last iterate but has moved away from the initial weights
    assert 0 < (averaged - initial).norm() < (last - initial).norm()


def test_training_rejects_images_outside_unit_range():
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        train_eps_model(tiny_unet(), np.full((4, 3, 16, 16), 3.0, np.float32), linear_betas(), steps=1,
                        progress=False)


def test_training_logs_progress(patches16, caplog):
    with caplog.at_level("INFO", logger="discoverydiff.training"):
        train_eps_model(tiny_unet(), patches16, linear_betas(), steps=4, batch_size=4, log_every=2, progress=False)
    assert sum("step" in r.getMessage() for r in caplog.records) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda_bf16(patches16):
    unet = tiny_unet()
    result = train_eps_model(unet, patches16, linear_betas(), steps=10, device="cuda", precision="bf16",
                             progress=False)
    assert np.all(np.isfinite(result["loss"]))
    assert next(unet.parameters()).device.type == "cuda"


def test_summarize_losses():
    summary = summarize_losses(np.arange(10.0), n_windows=2)
    assert summary == [{"first_step": 1, "last_step": 5, "mean_loss": 2.0},
                       {"first_step": 6, "last_step": 10, "mean_loss": 7.0}]


# -------------------------------------------------------------------------- checkpoint


def test_checkpoint_round_trip(tmp_path):
    unet = tiny_unet(seed=3)
    out = tmp_path / "ckpt"
    betas_info = {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear"}
    save_diffusers_checkpoint(unet, out, betas_info, extra={"steps": 7, "source": "unit test"})
    assert {p.name for p in out.iterdir()} == {
        "config.json", "diffusion_pytorch_model.safetensors", "scheduler_config.json", "training.json"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary leftovers

    loaded = UNet2DModel.from_pretrained(out)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([10, 900])
    with torch.no_grad():
        assert torch.equal(unet.eval()(x, t).sample, loaded.eval()(x, t).sample)

    scheduler = DDPMScheduler.from_pretrained(out)
    assert scheduler.config.prediction_type == "epsilon"
    np.testing.assert_allclose(scheduler.betas.numpy(), linear_betas(), rtol=1e-6)

    provenance = json.loads((out / "training.json").read_text())
    assert provenance["steps"] == 7 and provenance["source"] == "unit test"
    assert provenance["software"]["torch"] == torch.__version__
    assert provenance["schedule"]["beta_end"] == 0.02


def test_checkpoint_replaces_atomically_and_survives_a_failed_save(tmp_path):
    out = tmp_path / "ckpt"
    betas_info = {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02}
    save_diffusers_checkpoint(tiny_unet(seed=1), out, betas_info, extra={"run": 1})
    save_diffusers_checkpoint(tiny_unet(seed=2), out, betas_info, extra={"run": 2})
    assert json.loads((out / "training.json").read_text())["run"] == 2
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    with pytest.raises(TypeError):
        save_diffusers_checkpoint(tiny_unet(seed=3), out, betas_info, extra={"run": object()})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_checkpoint_requires_schedule_keys(tmp_path):
    with pytest.raises(ValueError, match="beta_end"):
        save_diffusers_checkpoint(tiny_unet(), tmp_path / "x", {"num_train_timesteps": 1000, "beta_start": 1e-4})
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------ shipped checkpoint


@pytest.mark.skipif(not (SHIPPED / "training.json").exists(), reason="shipped demo checkpoint not built")
def test_shipped_demo_checkpoint():
    size = sum(p.stat().st_size for p in SHIPPED.iterdir())
    assert size < 20e6
    unet = UNet2DModel.from_pretrained(SHIPPED)
    for key, value in small_unet_config(32, 3).items():
        got = unet.config[key]
        assert (list(got) if isinstance(got, (list, tuple)) else got) == (
            list(value) if isinstance(value, (list, tuple)) else value), key
    scheduler = DDPMScheduler.from_pretrained(SHIPPED)
    np.testing.assert_allclose(scheduler.betas.numpy(), linear_betas(), rtol=1e-6)
    provenance = json.loads((SHIPPED / "training.json").read_text())
    assert provenance["training"]["steps"] > 0
    assert scheduler.config.prediction_type == "v_prediction"
    from discoverydiff.models import load_model

    model = load_model({"source": "trained", "path": str(SHIPPED), "resolution": 32, "channels": 3})
    patches = natural_image_patches(64, 32, seed=12345)  # held out: training used seeds 42 and 43
    # it denoises held-out natural patches far better than predicting eps = 0 (MSE 1)
    x_t, eps, t = noisy_batch(patches, t=300, seed=0)
    assert eps_mse(model, x_t, eps, t) < 0.08
    # and at the noisiest step its clean-image estimate stays near the data, where an eps-network's
    # errors are amplified by 1 / sqrt(alpha_bar) = 157 (stage 1 alone: RMSE 5.7 on [-1, 1] images)
    x_t, eps, t = noisy_batch(patches, t=999, seed=1)
    a = float(model.alpha_bar[999])
    with torch.no_grad():
        x0_hat = (x_t - (1 - a) ** 0.5 * model(x_t, t)) / a**0.5
    assert float(torch.sqrt(torch.mean((x0_hat - torch.as_tensor(patches)) ** 2))) < 1.0


# ------------------------------------------------------------------------ rule train_base


def test_train_base_model_writes_a_loadable_reproducible_checkpoint(tmp_path):
    from discoverydiff.models import load_model

    cfg = {"source": "trained", "resolution": 8, "channels": 3, "source_images": {"n": 32},
           "train": {"steps": 4, "batch_size": 4, "lr": 1e-3, "warmup_steps": 2}}
    summary = training.train_base_model(cfg, tmp_path / "a", seed=3, device="cpu")
    training.train_base_model(cfg, tmp_path / "b", seed=3, device="cpu")
    assert summary["training"]["steps"] == 4 and summary["n_images"] == 32
    assert summary["training"]["loss_curve"][0]["first_step"] == 1
    written = json.loads((tmp_path / "a" / "training.json").read_text())
    assert written["training"]["warmup_steps"] == 2 and written["schedule"]["num_train_timesteps"] == 1000
    weights = "diffusion_pytorch_model.safetensors"
    assert (tmp_path / "a" / weights).read_bytes() == (tmp_path / "b" / weights).read_bytes()
    model = load_model({**cfg, "path": str(tmp_path / "a")})
    x = torch.zeros(2, 3, 8, 8)
    fresh = UNet2DModel(**small_unet_config(8, 3))
    with torch.no_grad():
        assert model(x, torch.tensor([10, 10])).shape == (2, 3, 8, 8)
        # training moved the weights away from a fresh initialisation
        t = torch.tensor([10, 10])
        assert not torch.allclose(default_eps_fn(fresh.eval(), x, t), model(x, t))


def test_learning_rate_schedules_follow_their_closed_forms():
    lr = 1e-3
    assert [training.learning_rate(s, 100, lr, 10) for s in (0, 4, 9)] == pytest.approx([1e-4, 5e-4, 1e-3])
    assert training.learning_rate(50, 100, lr, 10, "constant") == lr
    # half cosine over the 90 steps after warm-up: lr/2 halfway, lr (1 + cos(pi/9))/2 after 10 steps, 0 at the end
    assert training.learning_rate(55, 100, lr, 10, "cosine") == pytest.approx(lr / 2)
    assert training.learning_rate(20, 100, lr, 10, "cosine") == pytest.approx(lr * (1 + np.cos(np.pi / 9)) / 2)
    assert training.learning_rate(100, 100, lr, 10, "cosine") == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="lr_schedule"):
        train_eps_model(tiny_unet(), np.zeros((2, 3, 16, 16), np.float32), linear_betas(), steps=1,
                        lr_schedule="linear", progress=False)


def test_snapshots_see_the_ema_weights_and_training_goes_on(patches16):
    seen = {}

    def snapshot(step, unet):
        seen[step] = [p.detach().clone() for p in unet.parameters()]

    unet = tiny_unet()
    train_eps_model(unet, patches16, linear_betas(), steps=6, batch_size=4, ema_decay=0.9, progress=False,
                    on_snapshot=snapshot, snapshot_every=3)
    assert sorted(seen) == [3, 6]
    # the snapshot at the last step holds what training returns (the EMA), and differs from step 3
    for final, snap in zip(unet.parameters(), seen[6]):
        torch.testing.assert_close(final.detach(), snap)
    assert any(not torch.equal(a, b) for a, b in zip(seen[3], seen[6]))


def test_training_can_continue_from_a_checkpoint_and_records_it(tmp_path):
    cfg = {"source": "trained", "resolution": 8, "channels": 3, "source_images": {"n": 16},
           "train": {"steps": 2, "batch_size": 4, "lr": 1e-3}}
    training.train_base_model(cfg, tmp_path / "first", seed=1, device="cpu")
    weights = "diffusion_pytorch_model.safetensors"
    first = (tmp_path / "first" / weights).read_bytes()
    cont = {**cfg, "train": {**cfg["train"], "init_from": str(tmp_path / "first"), "lr": 1e-9, "ema_decay": None}}
    summary = training.train_base_model(cont, tmp_path / "second", seed=2, device="cpu")
    assert summary["initialized_from"]["sha256"] == hashlib.sha256(first).hexdigest()
    assert summary["initialized_from"]["training"]["training"]["steps"] == 2
    # at a vanishing learning rate the continued weights are the first run's, not a fresh initialisation
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "first" / weights)), load_file(str(tmp_path / "second" / weights))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    fresh = UNet2DModel(**small_unet_config(8, 3)).state_dict()
    assert not all(torch.allclose(fresh[k], b[k]) for k in b)
    with pytest.raises(InputError, match="init_from"):
        training.train_base_model({**cfg, "train": {**cfg["train"], "init_from": str(tmp_path)}},
                                  tmp_path / "third", seed=2, device="cpu")
