"""DDIM against closed forms: the index sequence, the schedule, and the probability-flow
solution for Gaussian data, where the exact inversion map is known."""

from fractions import Fraction

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from discoverydiff.diffusion import (
    DDIMSettings,
    alphas_cumprod,
    cosine_betas,
    ddim_generate,
    ddim_invert,
    ddim_step,
    linear_betas,
    timestep_sequence,
)
from discoverydiff.errors import ConfigError
from discoverydiff.models import analytic_model


def test_sequence_matches_the_formula_and_reference_values():
    seq = timestep_sequence(900, 80)
    assert seq[:4] == [0, 11, 22, 34] and seq[-2:] == [888, 900] and len(seq) == 80
    assert timestep_sequence(100, 5) == [0, 25, 50, 75, 100]
    assert timestep_sequence(10, 3) == [0, 5, 10]
    assert timestep_sequence(999, 2) == [0, 999]
    # against exact rational arithmetic: floor(k t0 / (n - 1)), except where that ratio is an
    # integer and float rounding of linspace may land just below it (then either neighbour)
    for t0, n in [(900, 80), (500, 7), (999, 100), (37, 11), (1000, 37)]:
        seq = timestep_sequence(t0, n)
        assert len(seq) == n and seq[0] == 0 and seq[-1] == t0
        for k, got in enumerate(seq):
            exact = Fraction(k * t0, n - 1)
            allowed = {int(exact), int(exact) - 1} if exact.denominator == 1 and 0 < k < n - 1 else {int(exact)}
            assert got in allowed, (t0, n, k, got, exact)
    with pytest.raises(ConfigError, match="at least 2"):
        timestep_sequence(900, 1)


def test_linear_schedule_reference_values():
    abar = alphas_cumprod(linear_betas())
    assert np.sqrt(abar[900]) == pytest.approx(0.01644, abs=5e-5)
    assert np.sqrt(1 - abar[900]) == pytest.approx(0.99986, abs=5e-6)
    cos = alphas_cumprod(cosine_betas())
    assert np.all(np.diff(cos) < 0) and cos[0] > 0.999 and cos[-1] < 1e-4


def _gaussian_problem(d_side=4, n=400, seed=0):
    rng = np.random.default_rng(seed)
    d = d_side * d_side
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    cov = a @ a.T * 0.3 + 0.02 * np.eye(d)
    mean = rng.normal(scale=0.3, size=d)
    images = rng.multivariate_normal(mean, cov, size=n).reshape(n, 1, d_side, d_side).astype(np.float32)
    model = analytic_model("analytic_gaussian", images)
    net = model.net
    mu = net.mu.double().numpy()
    u = net.U.double().numpy()
    lam = net.lam.double().numpy()
    return model, images, mu, u, lam


def _pf_ode_map(x, mu, u, lam, a_from, a_to):
    """Exact probability-flow map for N(mu, U diag(lam) U^T): in x/sqrt(a) coordinates each
    eigen-component's offset from mu scales with sqrt(lam + sigma^2), sigma^2 = (1 - a) / a."""
    xb = x.reshape(len(x), -1) / np.sqrt(a_from)
    s2_from, s2_to = (1 - a_from) / a_from, (1 - a_to) / a_to
    coef = (xb - mu) @ u
    xb_to = mu + (coef * np.sqrt((lam + s2_to) / (lam + s2_from))) @ u.T
    return (np.sqrt(a_to) * xb_to).reshape(x.shape)


def test_inversion_and_generation_match_the_closed_form_flow():
    model, images, mu, u, lam = _gaussian_problem()
    abar = model.alpha_bar
    x0 = torch.from_numpy(images[:16])
    exact_latent = _pf_ode_map(images[:16].astype(np.float64), mu, u, lam, abar[0], abar[900])
    errors = []
    for n in (10, 40, 160, 640):
        z = ddim_invert(model, x0, abar, DDIMSettings(900, n)).double().numpy()
        errors.append(np.abs(z - exact_latent).max() / np.abs(exact_latent).max())
    # DDIM is the Euler step of the flow in (x / sqrt(a), sigma): first order, so 4x the
    # steps cut the error about 4x (measured 0.38, 0.12, 0.032, 0.009)
    assert errors[-1] < 0.015, errors
    assert all(a / b > 2.5 for a, b in zip(errors, errors[1:])), errors
    # generation from the exact latent back to alpha_bar = 1
    exact_clean = _pf_ode_map(exact_latent, mu, u, lam, abar[900], 1.0 - 1e-12)
    x = ddim_generate(model, torch.from_numpy(exact_latent).float(), abar, DDIMSettings(900, 640))
    assert np.abs(x.double().numpy() - exact_clean).max() < 0.02 * np.abs(exact_clean).max()


def test_reconstruction_error_falls_as_steps_grow():
    model, images, *_ = _gaussian_problem(seed=1)
    x0 = torch.from_numpy(images[:32])
    mses = []
    for n in (5, 20, 80):
        s = DDIMSettings(900, n)
        rec = ddim_generate(model, ddim_invert(model, x0, model.alpha_bar, s), model.alpha_bar, s)
        mses.append(float(((rec - x0) ** 2).mean()))
    assert mses[0] > 4 * mses[1] > 16 * mses[2], mses


def test_empirical_model_memorizes_its_training_images():
    rng = np.random.default_rng(3)
    train = rng.uniform(-1, 1, size=(6, 3, 4, 4)).astype(np.float32)
    model = analytic_model("empirical", train)
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn((10, 3, 4, 4), generator=gen)
    out = ddim_generate(model, noise, model.alpha_bar, DDIMSettings(999, 50)).numpy()
    d = ((out[:, None] - train[None]) ** 2).reshape(10, 6, -1).mean(-1)
    assert d.min(axis=1).max() < 1e-3  # every sample is (nearly) a copy of a training image


def test_gaussian_low_rank_matches_full_rank_where_the_data_spans():
    rng = np.random.default_rng(4)
    basis = rng.normal(size=(3, 48))
    images = (rng.normal(size=(200, 3)) @ basis).reshape(200, 3, 4, 4).astype(np.float32)
    low = analytic_model("analytic_gaussian", images)
    assert not low.net.full_rank and low.net.U.shape[1] <= 200
    x = torch.randn(4, 3, 4, 4)
    t = torch.tensor([0, 100, 500, 999])
    # exact eps for N(mu, Sigma + floor on the complement), with a dense solve
    mu = low.net.mu.double()
    u, lam, floor = low.net.U.double(), low.net.lam.double(), low.net.floor
    sigma = u @ torch.diag(lam) @ u.T + floor * (torch.eye(48, dtype=torch.float64) - u @ u.T)
    for i in range(4):
        a = float(low.alpha_bar[t[i]])
        r = x[i].reshape(-1).double() - a**0.5 * mu
        exact = (1 - a) ** 0.5 * torch.linalg.solve(a * sigma + (1 - a) * torch.eye(48, dtype=torch.float64), r)
        np.testing.assert_allclose(low(x[i:i + 1], t[i:i + 1]).reshape(-1).double(), exact, rtol=2e-3, atol=2e-4)


def test_cpu_runs_are_bitwise_reproducible():
    model, images, *_ = _gaussian_problem(seed=2)
    x0 = torch.from_numpy(images[:8])
    s = DDIMSettings(900, 20, eta=0.5)
    z1, z2 = (ddim_invert(model, x0, model.alpha_bar, s) for _ in range(2))
    assert torch.equal(z1, z2)
    g1 = ddim_generate(model, z1, model.alpha_bar, s, torch.Generator().manual_seed(9))
    g2 = ddim_generate(model, z1, model.alpha_bar, s, torch.Generator().manual_seed(9))
    g3 = ddim_generate(model, z1, model.alpha_bar, s, torch.Generator().manual_seed(10))
    assert torch.equal(g1, g2) and not torch.equal(g1, g3)


@pytest.mark.parametrize("eta", [0.3, 1.0])
def test_stochastic_ddim_steps_match_diffusers(eta):
    """eta > 0 against diffusers' DDIMScheduler, an independent implementation, with the same noise."""
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                              clip_sample=False, set_alpha_to_one=True, prediction_type="epsilon")
    scheduler.set_timesteps(50)  # steps of 20 train timesteps
    g = torch.Generator().manual_seed(0)
    for t in (980, 500, 20, 0):
        x = torch.randn((2, 3, 8, 8), generator=g, dtype=torch.float64)
        eps = torch.randn((2, 3, 8, 8), generator=g, dtype=torch.float64)
        noise = torch.randn((2, 3, 8, 8), generator=g, dtype=torch.float64)
        # diffusers keeps alpha_bar in float32: give both the same values, so only the updates differ
        abar = scheduler.alphas_cumprod.double()
        a_next = float(abar[t - 20]) if t >= 20 else 1.0
        theirs = scheduler.step(eps, t, x, eta=eta, variance_noise=noise).prev_sample
        ours = ddim_step(x, eps, float(abar[t]), a_next, eta, noise)
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)  # float32 coefficients in diffusers


def test_bf16_on_a_gpu_without_it_runs_fp32_with_a_warning(monkeypatch, caplog):
    import contextlib

    from discoverydiff import diffusion

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100-SXM2-32GB")
    with caplog.at_level("WARNING"):
        ctx = diffusion.autocast_context(torch.device("cuda"), "bf16")
    assert isinstance(ctx, contextlib.nullcontext)
    assert "Tesla V100" in caplog.text and "precision: fp16" in caplog.text
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert isinstance(diffusion.autocast_context(torch.device("cuda"), "bf16"), torch.autocast)
