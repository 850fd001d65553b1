"""Memory-aware batches (discoverydiff.memory): measured needs, plans that fit, the error when nothing
fits, and out-of-memory retries whose halved batches give what the smaller batch gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from discoverydiff import memory
from discoverydiff.diffusion import DDIMSettings, linear_betas
from discoverydiff.engine import RunOptions, invert_tensor_file, sample_from_noise
from discoverydiff.errors import ConfigError
from discoverydiff.models import EpsModel
from discoverydiff.store import TensorFileWriter, read_tensor_file

CAN_MEASURE_CPU = memory.measure_peak_mb(lambda: None, "cpu") is not None


@pytest.fixture(autouse=True)
def fresh_table(monkeypatch):
    """Each test measures anew, with no memory limit but its own, as no rule."""
    monkeypatch.setattr(memory, "NEEDS", {})
    monkeypatch.delenv(memory.ENV_LIMIT, raising=False)
    memory.set_job(None, None)
    yield
    memory.set_job(None, None)


@pytest.mark.parametrize("text,mb", [("2048", 2048.0), ("12G", 12288.0), ("800M", 800.0), ("1.5 GB", 1536.0),
                                     ("512MiB", 512.0), ("1T", 1024.0**2), (300, 300.0)])
def test_memory_sizes_parse(text, mb):
    assert memory.parse_mb(text, "x") == pytest.approx(mb)


@pytest.mark.parametrize("bad", ["lots", "-3G", "0", ""])
def test_a_bad_memory_limit_names_the_variable(monkeypatch, bad):
    monkeypatch.setenv(memory.ENV_LIMIT, bad if bad else " 0")
    with pytest.raises(ConfigError, match=memory.ENV_LIMIT):
        memory.memory_limit_mb()


@pytest.mark.skipif(not CAN_MEASURE_CPU, reason="needs Linux /proc/self/clear_refs")
def test_measured_peak_is_the_memory_a_call_touches():
    def touch(mb):
        a = np.ones(int(mb * 2**20 / 8))  # touched pages, freed on return
        return float(a[-1])

    small = memory.measure_peak_mb(lambda: touch(50), "cpu")
    large = memory.measure_peak_mb(lambda: touch(250), "cpu")
    assert 45 <= small <= 80, small
    assert 240 <= large <= 290, large


@pytest.mark.skipif(not CAN_MEASURE_CPU, reason="needs Linux /proc/self/clear_refs")
def test_a_plan_fits_the_limit_and_the_batch_is_a_maximum(monkeypatch):
    per_item = 60  # MB that the probe touches per item

    def probe(b):
        a = np.ones(int(b * per_item * 2**20 / 8))
        return float(a[0])

    used = memory.resident_mb()
    monkeypatch.setenv(memory.ENV_LIMIT, f"{used + 400:.0f}")  # 400 MB above what the process holds
    batch = memory.plan_batch("test item", probe, 32, "cpu", key=("a",))
    need = memory.NEEDS[("test item", "cpu", "a")]
    assert need.points == 2 and need.per_item == pytest.approx(per_item, rel=0.25)
    # 0.9 x 400 MB / 60 MB = 6, give or take what the process freed or added since (the garbage of
    # earlier tests): the plan fills at most HEADROOM of what the limit left free when it ran
    limit, held = used + 400, memory.resident_mb()
    assert 3 <= batch <= 8
    assert need.at(batch) <= memory.HEADROOM * (limit - min(used, held))
    # with room to spare the configured batch is kept (it is a maximum, never raised)
    monkeypatch.setenv(memory.ENV_LIMIT, f"{used + 5000:.0f}")
    assert memory.plan_batch("test item", probe, 8, "cpu", key=("a",)) == 8


def test_when_one_item_does_not_fit_the_error_names_rule_need_and_free(monkeypatch):
    monkeypatch.setenv(memory.ENV_LIMIT, "1")
    memory.set_job("jacobian_in_domain", None)
    with pytest.raises(memory.MemoryBudgetError) as caught:
        memory.plan_batch("Jacobian product", lambda b: None, 8, "cpu", key=("b",), min_item_mb=300)
    text = str(caught.value)
    assert "rule jacobian_in_domain" in text
    assert "one Jacobian product needs 300 MB" in text
    assert "0 MB free under the limit of 1 MB from DISCOVERYDIFF_MEMORY_LIMIT" in text


def test_the_rules_mem_mb_bounds_a_cpu_job_and_the_environment_overrides_the_config(monkeypatch):
    used = memory.resident_mb()
    memory.set_job("invert", used + 100)
    free, what = memory.budget_mb("cpu")
    assert free <= 100 and "the rule's mem_mb resource" in what
    free, what = memory.budget_mb("cpu", config_limit=used + 50)
    assert free <= 50 and "config memory_limit_mb" in what
    monkeypatch.setenv(memory.ENV_LIMIT, f"{used + 20:.0f}")
    free, what = memory.budget_mb("cpu", config_limit=used + 50)
    assert free <= 21 and memory.ENV_LIMIT in what  # the variable holds whole MB


@pytest.mark.parametrize("n,batch,sizes", [(16, 16, [16]), (16, 6, [4, 4, 4, 4]), (16, 8, [8, 8]),
                                           (10, 4, [3, 3, 3, 1]), (5, 1, [1] * 5), (0, 4, [])])
def test_sub_batches_halve(n, batch, sizes):
    parts = memory.split(n, batch)
    assert [p.stop - p.start for p in parts] == sizes
    assert all(p.stop - p.start <= batch for p in parts)
    assert sum(sizes) == n


# --------------------------------------------------------------------------- the engine
class _Net(torch.nn.Module):
    """A small convolutional eps-model with attention-free mixing across pixels (per image)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.a = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.b = torch.nn.Conv2d(16, 3, 3, padding=1)

    def forward(self, x, t):
        return self.b(torch.tanh(self.a(x) + t.float()[:, None, None, None] / 1000))


class _RefusesLargeBatches(torch.nn.Module):
    """Raises torch's out-of-memory error for batches above ``most``, as a full GPU does."""

    def __init__(self, net, most):
        super().__init__()
        self.net, self.most, self.sizes = net, most, []

    def forward(self, x, t):
        self.sizes.append(x.shape[0])
        if x.shape[0] > self.most:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return self.net(x, t)


def _images(path, n=16, seed=0):
    x = np.random.default_rng(seed).uniform(-1, 1, (n, 3, 8, 8)).astype(np.float32)
    with TensorFileWriter(path, x.shape, "images", {"normalization": None, "dataset": "t"}) as w:
        w.write(0, x, [f"m{i}" for i in range(n)])
        w.add_dataset("split", np.array(["fewshot"] * n, dtype=object))
    return path


def _model(net):
    return EpsModel(net, linear_betas(), "test-net", 3, 8)


def test_an_out_of_memory_batch_is_halved_and_gives_what_the_smaller_batch_gives(tmp_path):
    images = _images(tmp_path / "images.h5")
    settings = DDIMSettings(t0=500, n_steps=6)
    refusing = _RefusesLargeBatches(_Net(), most=4)
    invert_tensor_file(_model(refusing), images, tmp_path / "halved.h5", settings, RunOptions(device="cpu",
                                                                                               batch_size=16))
    assert 16 in refusing.sizes and max(s for s in refusing.sizes if s <= 4) == 4  # tried 16, ran 4 at a time
    invert_tensor_file(_model(_Net()), images, tmp_path / "four.h5", settings, RunOptions(device="cpu", batch_size=4))
    invert_tensor_file(_model(_Net()), images, tmp_path / "sixteen.h5", settings,
                       RunOptions(device="cpu", batch_size=16))
    halved, four = read_tensor_file(tmp_path / "halved.h5"), read_tensor_file(tmp_path / "four.h5")
    np.testing.assert_array_equal(halved.x, four.x)  # exactly the configured batch of 4
    assert halved.names == four.names
    np.testing.assert_allclose(halved.x, read_tensor_file(tmp_path / "sixteen.h5").x, atol=1e-5)


def test_a_planned_smaller_batch_keeps_each_samples_noise(tmp_path, monkeypatch):
    """eta > 0: every sample's noise comes from its own generator, also when its batch is split."""
    settings = DDIMSettings(t0=999, n_steps=5, eta=1.0)
    sample_from_noise(_model(_Net()), tmp_path / "four.h5", 16, settings, RunOptions(device="cpu", batch_size=4),
                      seed=7)
    monkeypatch.setattr(memory, "plan_batch", lambda *a, **k: 4)  # memory for 4 of the 16 configured
    sample_from_noise(_model(_Net()), tmp_path / "planned.h5", 16, settings,
                      RunOptions(device="cpu", batch_size=16), seed=7)
    np.testing.assert_array_equal(read_tensor_file(tmp_path / "planned.h5").x, read_tensor_file(tmp_path / "four.h5").x)


def test_a_job_whose_memory_limit_holds_no_image_stops_naming_the_rule(tmp_path, monkeypatch):
    images = _images(tmp_path / "images.h5")
    monkeypatch.setenv(memory.ENV_LIMIT, "1")
    memory.set_job("invert", None)
    with pytest.raises(memory.MemoryBudgetError, match=r"rule invert: one model evaluation of a 3x8x8 image needs "
                                                        r"\d+(\.\d+)? MB on cpu, but only 0 MB free under the limit"):
        invert_tensor_file(_model(_Net()), images, tmp_path / "latents.h5", DDIMSettings(500, 4),
                           RunOptions(device="cpu"))
    assert not (tmp_path / "latents.h5").exists()


# --------------------------------------------------------------------------- Jacobian and training
def test_jacobian_products_halved_after_out_of_memory_give_the_same_spectrum():
    from discoverydiff.jacobian import jacobian_table

    refusing = _model(_RefusesLargeBatches(_Net(), most=2))
    plain = _model(_Net())
    points = {"fewshot": (np.random.default_rng(1).uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32), ["p"])}
    a = jacobian_table(refusing, points, [300], k=6, oversample=2, power_iterations=1, batch=8)
    b = jacobian_table(plain, points, [300], k=6, oversample=2, power_iterations=1, batch=2)
    cols = [f"s_{j}" for j in range(1, 7)]
    np.testing.assert_allclose(a[cols].to_numpy(), b[cols].to_numpy(), rtol=1e-6)
    assert max(refusing.net.sizes) == 8 and refusing.net.sizes[-1] <= 2


def test_training_in_parts_follows_the_whole_batch():
    from discoverydiff.training import train_eps_model

    x = np.random.default_rng(2).uniform(-1, 1, (6, 3, 8, 8)).astype(np.float32)
    results = {}
    for micro in (8, 3, 1):
        net = _Net()
        history = train_eps_model(net, x, linear_betas(), steps=4, batch_size=8, lr=1e-3, seed=1, ema_decay=None,
                                  progress=False, micro_batch=micro)
        results[micro] = (history["loss"], torch.cat([p.detach().flatten() for p in net.parameters()]))
    for micro in (3, 1):
        np.testing.assert_allclose(results[micro][0], results[8][0], rtol=1e-5)
        torch.testing.assert_close(results[micro][1], results[8][1], rtol=1e-4, atol=1e-6)


def test_training_after_out_of_memory_redoes_the_step_in_halves():
    from discoverydiff.training import train_eps_model

    x = np.random.default_rng(2).uniform(-1, 1, (6, 3, 8, 8)).astype(np.float32)
    refusing = _RefusesLargeBatches(_Net(), most=2)
    h = train_eps_model(refusing, x, linear_betas(), steps=3, batch_size=8, lr=1e-3, seed=1, ema_decay=None,
                        progress=False, micro_batch=8)
    plain = _Net()
    g = train_eps_model(plain, x, linear_betas(), steps=3, batch_size=8, lr=1e-3, seed=1, ema_decay=None,
                        progress=False, micro_batch=2)
    np.testing.assert_allclose(h["loss"], g["loss"], rtol=1e-6)
    torch.testing.assert_close(list(refusing.net.parameters()), list(plain.parameters()))



def test_the_workflow_stops_a_job_whose_configured_memory_limit_holds_no_image(tmp_path):
    """config memory_limit_mb: the job fails with the one-line reason on the console, and no output."""
    import copy

    from test_workflow import TINY_DEMO, snakemake

    config = copy.deepcopy(TINY_DEMO)
    config["memory_limit_mb"] = 1
    run = snakemake(tmp_path, config, "results/radiation/shards/latents_1-of-1.h5")
    assert run.returncode != 0
    assert ("discoverydiff error: rule invert: one model evaluation of a 3x16x16 image needs"
            in run.stdout + run.stderr)
    assert "under the limit of 1 MB from config memory_limit_mb" in run.stdout + run.stderr
    assert not (tmp_path / "results/radiation/shards/latents_1-of-1.h5").exists()
