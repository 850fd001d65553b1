"""Jacobian spectra by randomized SVD against dense autograd Jacobians; MoLRG's exact denoiser as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from discoverydiff.jacobian import jacobian_singular_values, numerical_rank, spectrum_rank
from discoverydiff.molrg import MoLRG


def test_randomized_svd_matches_the_dense_jacobian():
    g = torch.Generator().manual_seed(0)
    w1 = torch.randn((48, 12), generator=g, dtype=torch.float64) / 4
    w2 = torch.randn((12, 48), generator=g, dtype=torch.float64) / 4

    def denoise(x):  # a rank-12 nonlinear map of (B, 3, 4, 4)
        flat = x.reshape(x.shape[0], -1)
        return (torch.tanh(flat @ w1) @ w2).reshape(x.shape)

    x = torch.randn((3, 4, 4), generator=g, dtype=torch.float64)
    dense = torch.autograd.functional.jacobian(lambda v: denoise(v[None])[0].reshape(-1), x).reshape(48, 48)
    expected = torch.linalg.svdvals(dense)
    got = jacobian_singular_values(denoise, x, k=12, oversample=8)
    torch.testing.assert_close(got, expected[:12], rtol=1e-8, atol=1e-10)
    assert numerical_rank(expected.numpy(), 0.999999) <= 12 and numerical_rank(np.zeros(3)) == 0
    # the whole squared spectrum from 8 of the 12 directions plus a Hutchinson estimate of the rest
    top, total = jacobian_singular_values(denoise, x, k=4, oversample=4, return_total=True)
    assert total == pytest.approx(float(dense.pow(2).sum()), rel=0.03)  # 38.4, 0.43 of it beyond 8 directions
    torch.testing.assert_close(top, expected[:4], rtol=1e-3, atol=0)
    assert numerical_rank([3.0, 4.0], 0.6) == 1 and numerical_rank([3.0, 4.0], 0.7) == 2  # 16/25 = 0.64


@pytest.mark.parametrize("std", [1.0, 0.4])
def test_molrg_denoiser_is_the_gaussian_mixture_posterior_mean(std):
    model = MoLRG.random(n_classes=3, dim=2, shape=(1, 3, 3), seed=1, std=std)
    a = 0.6
    s, sigma2 = a**0.5, 1 - a
    x_t = torch.randn((5, 1, 3, 3), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    got = model.denoise(x_t, a).reshape(5, -1).numpy()
    # independently: per class, the Gaussian posterior mean s Sigma (s^2 Sigma + sigma^2 I)^-1 y
    # and scipy's density of y under N(0, s^2 Sigma + sigma^2 I) for the class weights
    y = x_t.reshape(5, -1).numpy()
    means, dens = [], []
    for basis in model.bases.numpy():
        sigma = std**2 * basis @ basis.T
        cov = a * sigma + sigma2 * np.eye(9)
        means.append(s * (sigma @ np.linalg.solve(cov, y.T)).T)
        dens.append(multivariate_normal(np.zeros(9), cov).pdf(y))
    w = np.array(dens) / np.sum(dens, axis=0)
    np.testing.assert_allclose(got, np.einsum("kb,kbn->bn", w, np.array(means)), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dim", [2, 5])
def test_jacobian_of_the_exact_molrg_denoiser_has_rank_d_at_low_noise(dim):
    model = MoLRG.random(n_classes=3, dim=dim, shape=(1, 8, 8), seed=dim)
    x0, _ = model.sample(4, seed=3)
    a = 0.999  # t near 0: sigma^2 = 1e-3
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for point in a**0.5 * x0 + (1 - a) ** 0.5 * noise:
        values = jacobian_singular_values(lambda v: model.denoise(v, a), point, k=2 * dim + 4)
        assert numerical_rank(values.numpy()) == dim
        # the d large singular values are s / (s^2 + sigma^2), the projector's scaled by the shrinkage
        np.testing.assert_allclose(values[:dim].numpy(), a**0.5 / (a + (1 - a)), rtol=1e-6)
        assert float(values[dim]) < 1e-6


def test_x0_denoiser_of_a_diffusers_unet_with_attention_matches_the_dense_jacobian():
    from diffusers import UNet2DModel

    from discoverydiff.diffusion import linear_betas
    from discoverydiff.jacobian import x0_denoiser
    from discoverydiff.models import EpsModel

    torch.manual_seed(0)
    net = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16), layers_per_block=1,
                      down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                      up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=4).double().eval()
    model = EpsModel(net, linear_betas(1000), "tiny", 1, 8, prediction_type="v_prediction")
    for p in model.parameters():
        p.requires_grad_(False)
    denoise = x0_denoiser(model, 300)  # forward-mode AD through attention and group norm
    x = torch.randn((1, 8, 8), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    dense = torch.autograd.functional.jacobian(lambda v: denoise(v[None])[0].reshape(-1), x).reshape(64, 64)
    for batch in (7, 64):  # 7 does not divide 64: the last chunk of cotangents is padded; 64: one pass
        got = jacobian_singular_values(denoise, x, k=10, oversample=54, power_iterations=1, batch=batch)  # exact
        torch.testing.assert_close(got, torch.linalg.svdvals(dense)[:10], rtol=1e-6, atol=1e-8)
    assert not any(m._forward_pre_hooks for m in model.modules())  # the contiguity hooks are removed


def test_spectrum_rank_against_the_whole_spectrum():
    # squared spectrum 16, 9, 1 of total 26 (+ 0 unseen): 0.99 of 26 needs all three
    assert spectrum_rank([4.0, 3.0, 1.0], 26.0) == (3, 1.0, False)
    rank, captured, saturated = spectrum_rank([4.0, 3.0], 26.0)  # 25 of 26 seen: below 0.99
    assert (rank, saturated) == (2, True) and captured == pytest.approx(25 / 26)
    assert spectrum_rank([4.0, 3.0], 26.0, energy=0.7) == (2, 25 / 26, False)  # 16/26 = 0.62 < 0.7
    assert spectrum_rank([4.0, 3.0], 26.0, energy=0.5)[0] == 1  # 16/26 = 0.62 >= 0.5


def test_jacobian_table_of_the_closed_form_gaussian_model():
    """x0 of the Gaussian model is linear: J = sqrt(a) Sigma (a Sigma + (1 - a) I)^-1, known exactly."""
    from discoverydiff.jacobian import jacobian_table
    from discoverydiff.models import analytic_model

    rng = np.random.default_rng(0)
    images = np.tanh(rng.normal(0, 0.4, (6, 1, 6, 6)))  # rank-5 covariance in 36 dimensions
    model = analytic_model("analytic_gaussian", images, description="test")
    net = model.net
    lam, floor = net.lam.double().numpy(), net.floor
    table = jacobian_table(model, {"fewshot": (images[:2], ["a", "b"])}, [50, 600], k=8, oversample=4, batch=5)
    assert list(table["t"]) == [50, 600, 50, 600] and set(table["name"]) == {"a", "b"}
    for _, row in table.iterrows():
        a = float(model.alpha_bar[row["t"]])
        values = np.sqrt(a) * np.concatenate([lam, np.full(36 - len(lam), floor)])
        values = values / (a * np.concatenate([lam, np.full(36 - len(lam), floor)]) + 1 - a)
        expected = np.sort(values)[::-1]
        got = row[[f"s_{j}" for j in range(1, 9)]].to_numpy(float)
        np.testing.assert_allclose(got, expected[:8], rtol=2e-3, atol=1e-5)  # float32 model: rounding at 1e-6
        # the whole squared spectrum: exact in the range found, Hutchinson for the (tiny) rest
        assert row["frobenius_sq"] == pytest.approx(np.sum(expected**2), rel=1e-4)


def _trained_molrg(n_classes, dim, steps, batch_size):
    """An MLP x0-denoiser trained on 4,000 MoLRG images with the project's training code."""
    from discoverydiff.diffusion import linear_betas
    from discoverydiff.models import EpsModel
    from discoverydiff.molrg import MLPDenoiser
    from discoverydiff.training import train_eps_model

    data = MoLRG.random(n_classes=n_classes, dim=dim, shape=(1, 8, 8), seed=0, std=0.5)
    x, _ = data.sample(4000, seed=1)
    torch.manual_seed(0)
    net, betas = MLPDenoiser((1, 8, 8)), linear_betas()
    train_eps_model(net, x.float().numpy(), betas, steps=steps, batch_size=batch_size, lr=1e-3, seed=0,
                    ema_decay=None, progress=False, hflip=False, lr_schedule="cosine", prediction_type="sample")
    model = EpsModel(net, betas, "molrg-mlp", 1, 8, prediction_type="sample").eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return data, model


def _low_noise_spectra(data, model, dim, timesteps=(20, 50)):
    from discoverydiff.jacobian import x0_denoiser

    x0, _ = data.sample(3, seed=5)
    for t in timesteps:
        a = float(model.alpha_bar[t])
        g = torch.Generator().manual_seed(t)
        for point in x0:
            x_t = (a**0.5 * point + (1 - a) ** 0.5 * torch.randn(point.shape, generator=g, dtype=torch.float64))
            trained, total = jacobian_singular_values(x0_denoiser(model, t), x_t.float(), k=2 * dim + 4, batch=16,
                                                      return_total=True)
            exact = jacobian_singular_values(lambda v: data.denoise(v, a), x_t, k=2 * dim + 4)  # noqa: B023
            yield trained.double().numpy(), total, exact.numpy()


def test_a_trained_denoiser_of_one_low_rank_gaussian_has_the_oracle_rank():
    data, model = _trained_molrg(1, 3, steps=3000, batch_size=128)  # ~15 s on one core
    for trained, total, exact in _low_noise_spectra(data, model, 3):
        assert spectrum_rank(trained, total)[0] == 3 == numerical_rank(exact)
        np.testing.assert_allclose(trained[:3], exact[:3], rtol=0.15)  # the stated tolerance
        assert trained[3] < 0.02 * trained[0]  # off the subspace: the 60 other directions are cut


def test_a_trained_denoiser_of_a_mixture_keeps_to_the_union_of_its_subspaces():
    # Two 2-d subspaces. In a CPU test's budget the MLP learns their union (measured: rank 4 =
    # K d at every point, sigma_5 / sigma_1 <= 0.012) but not yet the clustering that brings the
    # local rank to d = 2, the exact denoiser's; 3,000 steps of 512 at lr 2e-3 reached rank 2-4.
    data, model = _trained_molrg(2, 2, steps=2000, batch_size=128)
    for trained, total, exact in _low_noise_spectra(data, model, 2, timesteps=(20,)):
        assert numerical_rank(exact) == 2  # t = 20: every point's class is certain
        assert 2 <= spectrum_rank(trained, total)[0] <= 4
        assert trained[4] < 0.02 * trained[0]


def _documented_cost(path, k, oversample, power_iterations):
    """The cost formula written in ``path`` ("2 (power_iterations + 1) (k + oversample) + ..."), evaluated."""
    import re
    from pathlib import Path

    text = " ".join((Path(__file__).resolve().parents[1] / path).read_text().split())
    match = re.search(r"2 \(power_iterations \+ 1\) \(k \+ oversample\)( \+ max\(oversample, 4\))?", text)
    assert match, f"{path} states no Jacobian cost formula"
    expression = match.group(0).replace(") (", ") * (").replace("2 (", "2 * (")
    return eval(expression, {"max": max}, {"k": k, "oversample": oversample, "power_iterations": power_iterations})


@pytest.mark.parametrize("path", ["config/schema.yaml", "config/README.md", "docs/statistics.md"])
@pytest.mark.parametrize("k, oversample, power_iterations", [(8, 4, 1), (5, 2, 0), (6, 10, 2)])
def test_the_documented_cost_is_the_number_of_jacobian_products(monkeypatch, path, k, oversample, power_iterations):
    import torch.func

    counted = {"jvp": 0, "vjp": 0}
    jvp, vjp = torch.func.jvp, torch.func.vjp

    def counting_jvp(f, primals, tangents):
        counted["jvp"] += tangents[0].shape[0]
        return jvp(f, primals, tangents)

    def counting_vjp(f, *primals):
        out, pullback = vjp(f, *primals)

        def counting_pullback(cotangent):
            counted["vjp"] += cotangent.shape[0]
            return pullback(cotangent)

        return out, counting_pullback

    monkeypatch.setattr(torch.func, "jvp", counting_jvp)
    monkeypatch.setattr(torch.func, "vjp", counting_vjp)
    w = torch.randn((48, 48), generator=torch.Generator().manual_seed(1), dtype=torch.float64) / 7
    x = torch.randn((3, 4, 4), dtype=torch.float64)
    # what rule jacobian computes: the top k and the whole spectrum's estimate, one product per pass
    jacobian_singular_values(lambda v: torch.tanh(v.reshape(len(v), -1) @ w).reshape(v.shape), x, k,
                             oversample=oversample, power_iterations=power_iterations, batch=1, return_total=True)
    assert counted["jvp"] + counted["vjp"] == _documented_cost(path, k, oversample, power_iterations)
