"""Loaders round-trip saved random-init models; bad checkpoints get messages that say what differs."""

import json

import numpy as np
import pytest
import torch

from discoverydiff.diffusion import linear_betas
from discoverydiff.errors import ConfigError, InputError
from discoverydiff.models import load_model, load_schedule


def _tiny_unet():
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(sample_size=16, in_channels=3, out_channels=3, block_out_channels=(16, 32),
                       layers_per_block=1, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=8)


def _save_diffusers(tmp_path, beta_end=0.02, prediction_type="epsilon"):
    unet = _tiny_unet()
    unet.save_pretrained(tmp_path / "ckpt", safe_serialization=True)
    (tmp_path / "ckpt" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "DDPMScheduler", "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": beta_end,
         "num_train_timesteps": 1000, "prediction_type": prediction_type}))
    return unet, tmp_path / "ckpt"


def _inputs(c=3, r=16):
    g = torch.Generator().manual_seed(1)
    return torch.randn((2, c, r, r), generator=g), torch.tensor([3, 700])


@pytest.mark.parametrize("source", ["diffusers", "trained"])
def test_diffusers_directory_round_trip(tmp_path, source):
    unet, path = _save_diffusers(tmp_path, beta_end=0.03)
    model = load_model({"source": source, "path": str(path), "resolution": 16, "channels": 3})
    x, t = _inputs()
    with torch.no_grad():
        np.testing.assert_allclose(model(x, t).numpy(), unet.eval()(x, t).sample.numpy(), atol=1e-5)
    np.testing.assert_allclose(model.betas, linear_betas(1000, 1e-4, 0.03))
    assert model.name.startswith(f"{source}:") and "sha256=" in model.name
    # the schedule alone, from the directory's JSON files, is the loaded model's
    schedule = load_schedule({"source": source, "path": str(path), "resolution": 16, "channels": 3})
    np.testing.assert_array_equal(schedule.alpha_bar, model.alpha_bar)
    assert (schedule.channels, schedule.resolution) == (model.channels, model.resolution) == (3, 16)
    with pytest.raises(ConfigError, match="3x16x16 images but model.channels/resolution say 3x32x32"):
        load_schedule({"source": source, "path": str(path), "resolution": 32, "channels": 3})


def test_adm_checkpoint_round_trip_pt_and_safetensors(tmp_path):
    from safetensors.torch import save_file

    from discoverydiff.adm import adm_from_flags

    flags = {"image_size": 16, "num_channels": 32, "num_res_blocks": 1, "attention_resolutions": "8",
             "channel_mult": "1,2", "num_head_channels": 16, "learn_sigma": True, "use_scale_shift_norm": True,
             "resblock_updown": True}
    torch.manual_seed(0)
    net = adm_from_flags(flags).eval()
    torch.save(net.state_dict(), tmp_path / "m.pt")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "m.safetensors"))
    x, t = _inputs()
    with torch.no_grad():
        expected = net(x, t)[:, :3]  # learned sigma: eps is the first half
        for name in ("m.pt", "m.safetensors"):
            model = load_model({"source": "adm", "path": str(tmp_path / name), "adm_flags": flags,
                                "resolution": 16, "channels": 3})
            np.testing.assert_array_equal(model(x, t).numpy(), expected.numpy())
    # the same weights under other flags: the error names what differs
    with pytest.raises(InputError, match="shape mismatch|missing key|unexpected key") as info:
        load_model({"source": "adm", "path": str(tmp_path / "m.pt"), "resolution": 16,
                    "adm_flags": {**flags, "num_channels": 64}})
    assert "m.pt" in str(info.value) and "adm_flags" in str(info.value)
    with pytest.raises(ConfigError, match="not_a_flag"):
        load_model({"source": "adm", "path": str(tmp_path / "m.pt"), "resolution": 16,
                    "adm_flags": {**flags, "not_a_flag": 1}})


def test_adm_refuses_pickled_objects(tmp_path):
    torch.save({"weights": torch.ones(2), "evil": object.__new__(_Payload)}, tmp_path / "bad.pt")
    with pytest.raises(InputError, match="weights-only"):
        load_model({"source": "adm", "path": str(tmp_path / "bad.pt"), "adm_flags": {"image_size": 16}})


class _Payload:  # an arbitrary class: torch.load(weights_only=True) must refuse to unpickle it
    pass


@pytest.mark.parametrize("source", ["analytic_gaussian", "empirical"])
def test_closed_form_models_from_natural_patches_are_deterministic(source):
    cfg = {"source": source, "resolution": 8, "channels": 3, "source_images": {"kind": "natural_patches", "n": 64}}
    a, b = load_model(cfg, seed=0), load_model(cfg, seed=0)
    x, t = _inputs(3, 8)
    assert torch.equal(a(x, t), b(x, t)) and a.name == b.name
    assert not torch.equal(a(x, t), load_model(cfg, seed=1)(x, t))


def test_bad_checkpoints(tmp_path):
    with pytest.raises(InputError, match="model directory does not exist"):
        load_model({"source": "diffusers", "path": str(tmp_path / "nowhere")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="has no config.json"):
        load_model({"source": "diffusers", "path": str(tmp_path / "empty")})
    unet, path = _save_diffusers(tmp_path)
    weights = path / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    with pytest.raises(InputError, match="cannot be loaded as a UNet2DModel"):
        load_model({"source": "diffusers", "path": str(path), "resolution": 16})
    weights.unlink()
    with pytest.raises(InputError, match="holds no diffusion_pytorch_model.safetensors"):
        load_model({"source": "diffusers", "path": str(path), "resolution": 16})
    _, path = _save_diffusers(tmp_path / "again")
    with pytest.raises(ConfigError, match="takes 3x16x16 images but model.channels/resolution say 3x32x32"):
        load_model({"source": "diffusers", "path": str(path), "resolution": 32})
    with pytest.raises(ConfigError, match="model.source must be one of"):
        load_model({"source": "stable-diffusion"})
    with pytest.raises(ConfigError, match="model.path is required"):
        load_model({"source": "diffusers"})


@pytest.mark.parametrize("prediction_type", ["v_prediction", "sample"])
def test_v_and_sample_models_step_like_diffusers(tmp_path, prediction_type):
    """A checkpoint that predicts v or x0 becomes an eps-model whose DDIM step is diffusers' own step."""
    from diffusers import DDIMScheduler

    from discoverydiff.diffusion import ddim_step

    unet, path = _save_diffusers(tmp_path, prediction_type=prediction_type)
    model = load_model({"source": "diffusers", "path": str(path), "resolution": 16, "channels": 3})
    assert model.prediction_type == prediction_type
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                              clip_sample=False, set_alpha_to_one=True, prediction_type=prediction_type)
    scheduler.set_timesteps(20)  # steps of 50 train timesteps
    abar = scheduler.alphas_cumprod.double()
    x, _ = _inputs()
    for t in (950, 500, 50):
        ts = torch.full((2,), t)
        with torch.no_grad():
            raw = unet(x, ts).sample
            eps = model(x, ts)
        theirs = scheduler.step(raw, t, x, eta=0.0).prev_sample
        ours = ddim_step(x.double(), eps.double(), float(abar[t]), float(abar[t - 50])).float()
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_unknown_prediction_type_is_refused(tmp_path):
    _, path = _save_diffusers(tmp_path, prediction_type="flow")
    with pytest.raises(InputError, match="prediction_type 'flow'; supported are epsilon, v_prediction, sample"):
        load_model({"source": "diffusers", "path": str(path), "resolution": 16})
