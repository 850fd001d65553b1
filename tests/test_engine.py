"""The engine over tensor files: latents and reconstructions with their attributes, batch-size
independence of streamed results, the reconstruction table, base-model sampling."""

import numpy as np
import pytest

from discoverydiff.diffusion import DDIMSettings
from discoverydiff.engine import (
    RunOptions,
    generate_tensor_file,
    invert_tensor_file,
    psnr,
    reconstruction_table,
    sample_base_model,
)
from discoverydiff.errors import InputError
from discoverydiff.models import analytic_model
from discoverydiff.normalize import fit_normalization
from discoverydiff.store import read_tensor_file, write_tensor_file


@pytest.fixture
def setup(tmp_path):
    rng = np.random.default_rng(0)
    source = np.tanh(rng.normal(0, 0.5, size=(300, 3, 6, 6))).astype(np.float32)
    model = analytic_model("analytic_gaussian", source, description="test")
    physical = np.exp(rng.normal(0, 1, size=(10, 1, 6, 6)))
    record = fit_normalization(physical, "log10", percentiles=(0, 100), units=["Habing"], channel_names=["G0"],
                               channel_mode="replicate")
    x, _ = record.to_normalized(physical)
    split = ["fewshot"] * 7 + ["test"] * 3
    images = write_tensor_file(tmp_path / "tensors.h5", x, [f"m{i}" for i in range(10)], "images",
                               {"normalization": record.to_json(), "dataset": "d", "wcs": {"CTYPE1": "RA---TAN"}},
                               split=split)
    return model, images, tmp_path


def test_invert_generate_reconstruct(setup):
    model, images, tmp = setup
    s = DDIMSettings(900, 30)
    invert_tensor_file(model, images, tmp / "latents.h5", s, RunOptions(batch_size=3), seed=4)
    lat = read_tensor_file(tmp / "latents.h5")
    assert lat.x.shape == (7, 3, 6, 6) and lat.names == [f"m{i}" for i in range(7)]
    assert lat.attrs["kind"] == "latents" and lat.attrs["t0"] == 900 and lat.attrs["n_steps"] == 30
    assert lat.attrs["model"] == model.name and lat.attrs["seed"] == 4
    assert lat.attrs["normalization"]["units"] == ["Habing"]
    assert lat.attrs["wcs"] == {"CTYPE1": "RA---TAN"}  # carried to samples for the physical FITS
    assert abs(lat.x.std() - 1) < 0.3  # x_900 is close to unit-variance noise
    # streaming in other batch sizes gives the same latents
    invert_tensor_file(model, images, tmp / "latents16.h5", s, RunOptions(batch_size=16), seed=4)
    np.testing.assert_allclose(read_tensor_file(tmp / "latents16.h5").x, lat.x, atol=1e-5)

    generate_tensor_file(model, tmp / "latents.h5", tmp / "rec.h5", s, RunOptions(batch_size=4), kind="reconstruction")
    assert read_tensor_file(tmp / "rec.h5").attrs["wcs"] == {"CTYPE1": "RA---TAN"}
    table = reconstruction_table(images, tmp / "rec.h5")
    real = read_tensor_file(images, split="fewshot").x
    rec = read_tensor_file(tmp / "rec.h5").x
    mse = ((rec.astype(np.float64) - real) ** 2).reshape(7, -1).mean(1)
    np.testing.assert_allclose(table["mse_normalized"], mse)
    np.testing.assert_allclose(table["psnr_db"], 10 * np.log10(4 / mse))
    assert list(table.columns)[-1] == "median_relative_error_physical [Habing]"
    assert table["psnr_db"].min() > 15  # the closed-form model reconstructs unseen maps


def test_psnr_closed_form():
    np.testing.assert_allclose(psnr(np.array([4.0, 0.04, 4e-4])), [0.0, 20.0, 40.0])


def test_sample_base_writes_samples_and_their_inversions(setup):
    model, _, tmp = setup
    s = DDIMSettings(900, 20)
    sample_base_model(model, tmp / "base.h5", tmp / "id.h5", 5, s, RunOptions(batch_size=2), seed=3)
    samples, latents = read_tensor_file(tmp / "base.h5"), read_tensor_file(tmp / "id.h5")
    assert samples.x.shape == latents.x.shape == (5, 3, 6, 6)
    assert samples.x.min() >= -1 and samples.x.max() <= 1 and latents.attrs["t0"] == 900
    assert samples.attrs["t0"] == 999  # sampled from pure noise over the whole schedule
    sample_base_model(model, tmp / "base2.h5", tmp / "id2.h5", 5, s, RunOptions(batch_size=5), seed=3)
    np.testing.assert_allclose(read_tensor_file(tmp / "base2.h5").x, samples.x, atol=1e-5)


def test_images_of_the_wrong_size_are_refused(setup, tmp_path):
    model, _, _ = setup
    write_tensor_file(tmp_path / "big.h5", np.zeros((2, 3, 8, 8)), ["a", "b"], "images", split=["fewshot"] * 2)
    with pytest.raises(InputError, match="holds \\(3, 8, 8\\) images but the model takes \\(3, 6, 6\\)"):
        invert_tensor_file(model, tmp_path / "big.h5", tmp_path / "l.h5", DDIMSettings(900, 5), RunOptions())
    assert not (tmp_path / "l.h5").exists()


def test_sharded_inversion_and_generation_gather_to_the_one_shard_files_bit_for_bit(tmp_path):
    from discoverydiff.models import analytic_model
    from discoverydiff.store import gather_tensor_files, shard_range, write_tensor_file
    from discoverydiff.training import natural_image_patches

    assert [shard_range(11, k, 3, align=4) for k in range(3)] == [(0, 4), (4, 8), (8, 11)]
    assert [shard_range(3, k, 2, align=4) for k in range(2)] == [(0, 0), (0, 3)]  # one block: a shard is empty
    model = analytic_model("analytic_gaussian", natural_image_patches(128, 8, seed=0))
    images = tmp_path / "t.h5"
    write_tensor_file(images, natural_image_patches(11, 8, seed=1), [f"i{i}" for i in range(11)], "images",
                      split=["fewshot"] * 11)
    settings, options = DDIMSettings(900, 10, 0.5), RunOptions(device="cpu", batch_size=4)
    invert_tensor_file(model, images, tmp_path / "z.h5", settings, options, 3)
    generate_tensor_file(model, tmp_path / "z.h5", tmp_path / "x.h5", settings, options, 3)
    for stem, run in (("z", lambda out, k: invert_tensor_file(model, images, out, settings, options, 3, shard=(k, 3))),
                      ("x", lambda out, k: generate_tensor_file(model, tmp_path / "z.h5", out, settings, options, 3,
                                                                shard=(k, 3)))):
        parts = [tmp_path / f"{stem}_{k}.h5" for k in range(3)]
        for k, part in enumerate(parts):
            run(part, k)
        gather_tensor_files(parts, tmp_path / f"{stem}_gathered.h5")
        one, gathered = read_tensor_file(tmp_path / f"{stem}.h5"), read_tensor_file(tmp_path / f"{stem}_gathered.h5")
        assert np.array_equal(one.x, gathered.x) and one.names == gathered.names and one.attrs == gathered.attrs


def test_physical_relative_error_leaves_out_zero_pixels(tmp_path):
    """8-bit cutouts have black (0) sky: the relative error there is undefined, not infinite."""
    import warnings

    rng = np.random.default_rng(1)
    physical = rng.integers(0, 256, size=(3, 3, 6, 6)).astype(np.float64)
    physical[:, :, :3] = 0.0  # half of every image is black sky
    # lo = -10: a true 0 comes back from float32 storage as about -6e-7, not 0
    record = fit_normalization(physical, "linear", lo=-10.0, hi=255.0, units=[None] * 3,
                               channel_names=["r", "g", "b"], channel_mode="identity")
    x, _ = record.to_normalized(physical)
    images = write_tensor_file(tmp_path / "t.h5", x, ["a", "b", "c"], "images",
                               {"normalization": record.to_json()}, split=["fewshot"] * 3)
    rec_x, _ = record.to_normalized(physical * 1.1 + 1.0)
    write_tensor_file(tmp_path / "rec.h5", rec_x, ["a", "b", "c"], "reconstruction", {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or division warnings
        table = reconstruction_table(images, tmp_path / "rec.h5")
    real = physical[:, :, 3:].reshape(3, -1)
    rec = np.clip(physical * 1.1 + 1.0, 0, 255)[:, :, 3:].reshape(3, -1)
    ok = real != 0
    expected = [np.median(np.abs(rec[i][ok[i]] - real[i][ok[i]]) / real[i][ok[i]]) for i in range(3)]
    np.testing.assert_allclose(table.iloc[:, -1], expected, rtol=1e-5)


def test_postprocess_is_applied_to_every_image_and_shards_agree(setup):
    from discoverydiff.spectral import power_law_filter
    from discoverydiff.store import gather_tensor_files

    model, images, tmp = setup
    s, options = DDIMSettings(900, 10), RunOptions(batch_size=3)
    invert_tensor_file(model, images, tmp / "z.h5", s, options)
    generate_tensor_file(model, tmp / "z.h5", tmp / "plain.h5", s, options)
    post = lambda x: power_law_filter(x, 0.1, 0.4)  # noqa: E731  (acts on each image alone)
    generate_tensor_file(model, tmp / "z.h5", tmp / "post.h5", s, options, postprocess=post)
    np.testing.assert_allclose(read_tensor_file(tmp / "post.h5").x, post(read_tensor_file(tmp / "plain.h5").x),
                               atol=1e-6)
    parts = [tmp / f"post_{k}.h5" for k in range(2)]
    for k, part in enumerate(parts):
        generate_tensor_file(model, tmp / "z.h5", part, s, options, shard=(k, 2), postprocess=post)
    gather_tensor_files(parts, tmp / "post_gathered.h5")
    assert np.array_equal(read_tensor_file(tmp / "post_gathered.h5").x, read_tensor_file(tmp / "post.h5").x)
