"""The engine's fast paths give what the plain ones give: channels_last, torch.compile, batching,
and diffusers' own DDIM schedulers as an independent implementation of the same updates.
(Their speed is measured in benchmarks/bench_engine.py, never asserted here.)"""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler

from discoverydiff.diffusion import DDIMSettings, ddim_generate, ddim_invert, prepare_eps_fn
from discoverydiff.models import load_model

DEMO_MODEL = Path(__file__).resolve().parents[1] / "resources" / "models" / "demo_unet32"
STEPS = 21  # int(linspace(0, 1, 21) * 940) is the uniform sequence 0, 47, ..., 940 diffusers can step
T0 = 940


@pytest.fixture(scope="module")
def model():
    """The shipped demo checkpoint: a trained denoiser, so DDIM is well conditioned."""
    return load_model({"source": "trained", "path": str(DEMO_MODEL), "resolution": 32, "channels": 3}).eval()


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(1)
    return torch.rand((6, 3, 32, 32), generator=g) * 2 - 1


def test_channels_last_gives_the_plain_eps(model, images):
    t = torch.full((len(images),), 500)
    with torch.no_grad():
        plain = model(images, t)
        fast = prepare_eps_fn(copy.deepcopy(model), torch.device("cpu"), channels_last=True)(images, t)
    assert plain.abs().mean() > 0.05  # a non-trivial eps
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-4)


def test_torch_compile_gives_the_plain_eps(model, images):
    t = torch.full((len(images),), 300)
    with torch.no_grad():
        plain = model(images, t)
        fast = prepare_eps_fn(copy.deepcopy(model), torch.device("cpu"), compile=True)(images, t)
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-4)


def test_batched_inversion_and_generation_equal_one_image_at_a_time(model, images):
    s = DDIMSettings(T0, STEPS)
    eps_fn = prepare_eps_fn(copy.deepcopy(model), torch.device("cpu"))
    batched = ddim_invert(eps_fn, images, model.alpha_bar, s)
    single = torch.cat([ddim_invert(model, x[None], model.alpha_bar, s) for x in images])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-4)
    regen = ddim_generate(eps_fn, batched, model.alpha_bar, s)
    single_regen = torch.cat([ddim_generate(model, z[None], model.alpha_bar, s) for z in single])
    torch.testing.assert_close(regen, single_regen, rtol=1e-4, atol=1e-4)


def test_engine_equals_diffusers_ddim_schedulers(model, images):
    """Inversion against DDIMInverseScheduler stepped with eps at the step's start (the paper's
    inversion), generation against DDIMScheduler with eta = 0: the same updates, coded apart."""
    s = DDIMSettings(T0, STEPS)
    assert s.sequence() == list(range(0, T0 + 1, 1000 // STEPS))
    common = {"num_train_timesteps": 1000, "trained_betas": model.betas.tolist(), "clip_sample": False,
              "set_alpha_to_one": True, "steps_offset": 0, "timestep_spacing": "leading"}
    forward, inverse = DDIMScheduler(**common), DDIMInverseScheduler(**common)
    forward.set_timesteps(STEPS)
    inverse.set_timesteps(STEPS)
    stride = 1000 // STEPS
    with torch.no_grad():
        x = images
        for t in inverse.timesteps[1:]:
            x = inverse.step(model(x, (t - stride).repeat(len(x))), t, x).prev_sample
        z_ref = x
        for t in forward.timesteps:
            x = forward.step(model(x, t.repeat(len(x))), t, x, eta=0.0).prev_sample
        x_ref = x
    z = ddim_invert(model, images, model.alpha_bar, s)
    x = ddim_generate(model, z, model.alpha_bar, s)
    assert float((z - images).abs().mean()) > 0.3  # the latents are far from the images
    # diffusers keeps alpha-bar in float32, this engine in float64: agreement to float32 rounding
    np.testing.assert_allclose(z.numpy(), z_ref.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(x.numpy(), x_ref.numpy(), rtol=1e-4, atol=1e-4)
