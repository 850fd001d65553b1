"""discoverydiff.adm against OpenAI's own guided-diffusion UNetModel (the independent implementation).

The reference is ``guided_diffusion`` (pip package guided-diffusion-sdk); the comparisons skip without it.
Weights are randomised before comparing: a freshly initialised ADM has zero-initialised output convolutions and
would output exactly 0 whatever the wiring.
"""

from __future__ import annotations

import inspect
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from discoverydiff.adm import (
    ADM_DEFAULTS,
    AFHQ_DOG_P2_FLAGS,
    ADMUNet,
    GroupNorm32,
    adm_from_flags,
    count_parameters,
    default_channel_mult,
    sinusoidal_timestep_embedding,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Run this file's small forwards on one intra-op thread, restoring the setting afterwards.

    The tensors here are tiny, so threads buy nothing, and on a busy 2-core runner OpenMP barriers stall: a forward
    that takes 0.04 s on one thread was measured at 2.2 s on two.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _guided_diffusion():
    """The reference package's script_util, nn and unet modules; skips the test without it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # its torch.cuda.amp decorators are deprecated
        pytest.importorskip("guided_diffusion")
        from guided_diffusion import nn as gd_nn
        from guided_diffusion import script_util, unet
    return script_util, gd_nn, unet


def _reference_model(flags: dict):
    """OpenAI's UNetModel through create_model, from the command-line defaults updated with ``flags``."""
    script_util, _, _ = _guided_diffusion()
    defaults = script_util.model_and_diffusion_defaults()
    args = inspect.signature(script_util.create_model).parameters
    merged = {k: v for k, v in {**defaults, **flags}.items() if k in args}
    return script_util.create_model(**merged)


@torch.no_grad()
def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Fan-in scaled Gaussian weights everywhere, so that every parameter shapes the output."""
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        if p.ndim > 1:
            std = 1.0 / math.sqrt(p[0].numel())
        else:
            std = 0.2
        p.copy_(torch.randn(p.shape, generator=gen) * std)


def _assert_same_layout(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert set(ours_sd) == set(theirs_sd), (sorted(set(ours_sd) ^ set(theirs_sd)))[:10]
    wrong = [(k, tuple(ours_sd[k].shape), tuple(v.shape)) for k, v in theirs_sd.items() if ours_sd[k].shape != v.shape]
    assert not wrong, wrong[:10]


SMALL_CASES = {
    "plain": dict(image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2,2", attention_resolutions="16",
                  num_heads=1, use_scale_shift_norm=False, resblock_updown=False, learn_sigma=False),
    "updown_scaleshift_headch_neworder": dict(
        image_size=32, num_channels=64, num_res_blocks=2, channel_mult=(1, 2, 2), attention_resolutions="16,8",
        num_head_channels=32, use_scale_shift_norm=True, resblock_updown=True, learn_sigma=True,
        use_new_attention_order=True),
    "default_mult_classcond_upheads": dict(
        image_size=64, num_channels=32, num_res_blocks=1, channel_mult="", attention_resolutions="16,8",
        num_heads=2, num_heads_upsample=4, use_scale_shift_norm=True, learn_sigma=True, class_cond=True),
    "fullres_attention_neworder": dict(
        image_size=32, num_channels=32, num_res_blocks=2, channel_mult="1,2", attention_resolutions="32,16",
        num_heads=4, use_scale_shift_norm=False, resblock_updown=True, use_new_attention_order=True, dropout=0.1),
}


@pytest.mark.parametrize("name", sorted(SMALL_CASES))
def test_matches_guided_diffusion_small(name):
    flags = SMALL_CASES[name]
    reference_flags = dict(flags)
    if not isinstance(flags["channel_mult"], str):  # create_model only takes the string form
        reference_flags["channel_mult"] = ",".join(map(str, flags["channel_mult"]))
    torch.manual_seed(0)
    theirs = _reference_model(reference_flags)
    ours = adm_from_flags(flags)
    _assert_same_layout(ours, theirs)
    assert count_parameters(ours) == sum(p.numel() for p in theirs.parameters())

    _randomize(theirs, seed=1)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    ours.eval()
    theirs.eval()

    torch.manual_seed(2)
    # 32x32 inputs even for the 64x64 model: the network is convolutional, attention happens at downsample rates,
    # and the smaller input keeps the test fast.
    x = torch.randn(3, 3, 32, 32)
    timesteps = torch.tensor([0, 500, 999])
    y = torch.tensor([0, 7, 999]) if flags.get("class_cond") else None
    with torch.no_grad():
        expected = theirs(x, timesteps, y=y)
        got = ours(x, timesteps, y=y)
        # Other timestep dtypes and fractional timesteps give the reference's results too.
        got_int32 = ours(x, timesteps.to(torch.int32), y=y)
        frac = torch.tensor([0.5, 10.25, 998.75])
        expected_frac, got_frac = theirs(x, frac, y=y), ours(x, frac.double(), y=y)
    assert got.shape == (3, 6 if flags.get("learn_sigma") else 3, 32, 32)
    assert expected.abs().max() > 0.1  # a non-trivial output, or the comparison proves nothing
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(got_int32, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(got_frac, expected_frac, atol=1e-5, rtol=0)
    # Different timesteps give different outputs (the embedding is wired in).
    assert (got[0] - got[2]).abs().max() > 1e-3


def test_attention_orders_differ_on_same_weights():
    # Guards the qkv layout: with multiple heads the two orders must not coincide, else the
    # use_new_attention_order cases above would not distinguish them.
    flags = dict(image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2", attention_resolutions="16",
                 num_heads=4)
    legacy, new = adm_from_flags(flags), adm_from_flags({**flags, "use_new_attention_order": True})
    _randomize(legacy, seed=3)
    new.load_state_dict(legacy.state_dict(), strict=True)
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([3, 700])
    with torch.no_grad():
        assert (legacy.eval()(x, t) - new.eval()(x, t)).abs().max() > 1e-3


def test_afhq_dog_p2_full_size():
    torch.manual_seed(0)
    theirs = _reference_model(AFHQ_DOG_P2_FLAGS)
    ours = adm_from_flags(AFHQ_DOG_P2_FLAGS)
    _assert_same_layout(ours, theirs)
    n_ours, n_theirs = count_parameters(ours), sum(p.numel() for p in theirs.parameters())
    print(f"AFHQ-dog P2 ADM parameters: ours {n_ours:,}, guided-diffusion {n_theirs:,}")
    assert abs(n_ours - n_theirs) <= 0.02 * n_theirs
    assert abs(n_theirs - 93e6) <= 0.02 * 93e6  # docs/references.md / the P2-weighting README: "93M"

    # The README's command line leaves channel_mult at "", which must resolve to the written-out value.
    with torch.device("meta"):
        from_default = adm_from_flags({**AFHQ_DOG_P2_FLAGS, "channel_mult": ""})
    assert from_default.channel_mult == (1, 1, 2, 2, 4, 4) == ours.channel_mult
    assert {k: v.shape for k, v in from_default.state_dict().items()} == {
        k: v.shape for k, v in ours.state_dict().items()}

    _randomize(theirs, seed=4)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    ours.eval()
    theirs.eval()
    # The full 256 network with all its weights, on a 64x64 input: every module runs (the attention of the
    # rate-16 level at 4x4, the bottleneck at 2x2). A 256x256 forward of each model takes 5-10 s on 2 CPU cores,
    # too long for CI; it was checked by hand to agree to the same tolerance.
    torch.manual_seed(5)
    x = torch.randn(1, 3, 64, 64)
    t = torch.tensor([640])
    with torch.no_grad():
        expected = theirs(x, t)
        got = ours(x, t)
    assert got.shape == (1, 6, 64, 64)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_timestep_embedding_is_bitwise_guided_diffusion():
    _, gd_nn, _ = _guided_diffusion()
    t = torch.tensor([0, 1, 17, 250, 999])
    for dim in (32, 128, 33):
        ours = sinusoidal_timestep_embedding(t, dim)
        assert ours.dtype == torch.float32 and ours.shape == (5, dim)
        assert torch.equal(ours, gd_nn.timestep_embedding(t, dim))
    frac = torch.tensor([0.5, 123.456], dtype=torch.float64)
    assert torch.equal(sinusoidal_timestep_embedding(frac, 64), gd_nn.timestep_embedding(frac, 64))
    # Cosines first: at t = 0 the first half is 1 and the second half 0.
    zero = sinusoidal_timestep_embedding(torch.tensor([0]), 8)
    assert torch.equal(zero, torch.tensor([[1.0, 1, 1, 1, 0, 0, 0, 0]]))


def test_groupnorm_in_float32_under_bfloat16():
    _, gd_nn, _ = _guided_diffusion()
    torch.manual_seed(6)
    ours, theirs = GroupNorm32(64), gd_nn.GroupNorm32(32, 64)
    with torch.no_grad():
        ours.weight.normal_()
        ours.bias.normal_()
    theirs.load_state_dict(ours.state_dict())
    x = (torch.randn(2, 64, 8, 8) * 50 + 300).to(torch.bfloat16)  # large mean: bf16 statistics would be poor
    with torch.no_grad():
        got = ours(x)
        expected = theirs(x)
        float32_then_cast = F.group_norm(x.float(), 32, ours.weight, ours.bias).to(torch.bfloat16)
    assert got.dtype == torch.bfloat16
    assert torch.equal(got, expected)
    assert torch.equal(got, float32_then_cast)


def test_bfloat16_autocast_close_to_reference():
    torch.manual_seed(7)
    # Small: bf16 convolutions are slow on most CPUs.
    flags = dict(image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2", attention_resolutions="16",
                 num_head_channels=32, use_scale_shift_norm=True, resblock_updown=True, learn_sigma=True)
    theirs = _reference_model(flags)
    ours = adm_from_flags(flags)
    _randomize(theirs, seed=8)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 900])
    with torch.no_grad():
        reference32 = theirs.eval()(x, t)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            expected, got = theirs(x, t), ours.eval()(x, t)
    assert got.dtype == expected.dtype
    scale = reference32.abs().max()
    # Both are bf16 approximations of the same fp32 result; they differ only by rounding.
    assert (got.float() - reference32).abs().max() < 0.05 * scale
    assert (got.float() - expected.float()).abs().max() < 0.05 * scale


def test_mismatched_checkpoint_raises():
    flags = dict(image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2", attention_resolutions="16")
    model = adm_from_flags(flags)
    good = model.state_dict()
    adm_from_flags(flags).load_state_dict(good, strict=True)

    missing = dict(good)
    del missing["middle_block.1.qkv.weight"]
    with pytest.raises(RuntimeError, match="middle_block.1.qkv.weight"):
        adm_from_flags(flags).load_state_dict(missing, strict=True)

    wrong_shape = dict(good)
    wrong_shape["out.2.weight"] = torch.zeros(6, 32, 3, 3)  # a learn_sigma checkpoint into a 3-channel model
    with pytest.raises(RuntimeError, match="out.2.weight"):
        adm_from_flags(flags).load_state_dict(wrong_shape, strict=True)

    # A checkpoint of a different architecture (scale-shift conditioning doubles emb_layers).
    other = adm_from_flags({**flags, "use_scale_shift_norm": not ADM_DEFAULTS["use_scale_shift_norm"]})
    with pytest.raises(RuntimeError, match="emb_layers"):
        model.load_state_dict(other.state_dict(), strict=True)


def test_unknown_flag_raises_value_error_naming_it():
    with pytest.raises(ValueError, match="num_chanels"):
        adm_from_flags({"num_chanels": 64})
    with pytest.raises(ValueError, match="model_path"):
        adm_from_flags({**AFHQ_DOG_P2_FLAGS, "model_path": "afhqdog_p2.pt"})


def test_flag_values_and_defaults():
    script_util, _, _ = _guided_diffusion()
    reference = script_util.model_and_diffusion_defaults()
    assert ADM_DEFAULTS == {k: reference[k] for k in ADM_DEFAULTS}

    with torch.device("meta"):
        # Command-line strings and diffusion-only flags are accepted, as in image_sample.py.
        model = adm_from_flags({"image_size": "32", "num_channels": "32", "num_res_blocks": "1",
                                "channel_mult": "1,2", "attention_resolutions": "16", "learn_sigma": "True",
                                "diffusion_steps": 1000, "noise_schedule": "linear", "timestep_respacing": "250"})
        assert model.out_channels == 6 and model.attention_resolutions == (2,) and model.channel_mult == (1, 2)
        with pytest.raises(ValueError, match="learn_sigma"):
            adm_from_flags({"learn_sigma": "maybe"})
        with pytest.raises(ValueError, match="image_size=48"):
            adm_from_flags({"image_size": 48})  # no default channel_mult, as in create_model
        with pytest.raises(ValueError, match="num_head_channels"):
            adm_from_flags({"image_size": 32, "num_channels": 32, "channel_mult": "1,2",
                            "attention_resolutions": "16", "num_head_channels": 24})
    assert default_channel_mult(512) == (0.5, 1, 1, 2, 2, 4, 4)


def test_forward_input_checks():
    model = ADMUNet(32, 3, 32, 3, 1, attention_resolutions=(2,), channel_mult=(1, 2), num_classes=10).eval()
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    with torch.no_grad():
        assert model(x, t, y=torch.tensor([0, 9])).shape == (2, 3, 32, 32)
        assert torch.equal(model(x, torch.tensor(5), y=torch.tensor([0, 9])),
                           model(x, torch.tensor([5, 5]), y=torch.tensor([0, 9])))
        with pytest.raises(ValueError, match="class-conditional"):
            model(x, t)
        with pytest.raises(ValueError, match="divisible by 2"):
            model(torch.randn(2, 3, 31, 32), t, y=torch.tensor([0, 9]))
        with pytest.raises(ValueError, match="timesteps"):
            model(x, torch.tensor([1, 2, 3]), y=torch.tensor([0, 9]))
