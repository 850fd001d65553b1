"""No method sees the validation or test maps: changing them leaves every method's output bit-identical.

The few-shot maps are the only maps inversion, discovery (with its screening against the few-shot
maps), the decoding of discovered latents, fine-tuning and the few-shot set's optimal denoiser may
read. Here the validation and test rows of tensors.h5 are replaced by extreme values and new names
(what a different draw of them would be), and every file those steps write is compared, dataset by
dataset and attribute by attribute, with the files written before.
"""

import hashlib
import shutil

import h5py
import numpy as np
import pytest
from tiny_inputs import tiny_eps_model, write_lognormal_fits

from discoverydiff.baseline import finetune_and_sample, sample_empirical
from discoverydiff.diffusion import DDIMSettings
from discoverydiff.discovery import discover_from_files
from discoverydiff.engine import RunOptions, generate_tensor_file, invert_tensor_file, sample_base_model
from discoverydiff.evaluation.controls import baseline_sets, unscreened_latents
from discoverydiff.ingest import ingest_dataset


def _methods(work, tensors, model):
    """Every method step on ``tensors``, writing into ``work``; returns the files written."""
    settings, options = DDIMSettings(600, 4), RunOptions(batch_size=4)
    invert_tensor_file(model, tensors, work / "latents.h5", settings, options)
    sample_base_model(model, work / "base.h5", work / "id_latents.h5", 8, settings, options, seed=3)
    cfg = {"n_samples": 4, "n_ref": 4, "tolerance": 4.0, "max_candidates": 50_000,
           "screen": {"oversample": 2, "preview_steps": "full", "select": "set", "restarts": 2}}
    discover_from_files(work / "latents.h5", work / "id_latents.h5", work / "discovered.h5", work / "geometry.csv",
                        cfg, seed=3, model=model, options=options, screening_path=work / "screening.csv",
                        tensors_path=tensors)
    generate_tensor_file(model, work / "discovered.h5", work / "samples.h5", settings, options, seed=3)
    unscreened_latents(work / "discovered.h5", work / "unscreened.h5", 4, seed=3)
    finetune_and_sample(model, tensors, work / "candidates.h5", settings, options,
                        {"steps": 3, "batch_size": 4, "lr": 1e-3}, n_samples=8, seed=3)
    baseline_sets(work / "candidates.h5", tensors, work / "baseline.h5", work / "selected.h5",
                  work / "baseline_screening.csv", 4, {"select": "set", "restarts": 2}, seed=3)
    sample_empirical(model, tensors, work / "empirical.h5", settings, options, 4, seed=3)
    return sorted(p for p in work.iterdir() if p.is_file())


def _contents(path) -> dict:
    """Every dataset (as bytes) and attribute of an HDF5 file, or the bytes of any other file."""
    if path.suffix != ".h5":
        return {"bytes": hashlib.sha256(path.read_bytes()).hexdigest()}
    out = {}
    with h5py.File(path, "r") as h5:
        def visit(name, item):
            if isinstance(item, h5py.Dataset):
                data = item[()]
                raw = "\x00".join(map(str, data)).encode() if data.dtype.kind == "O" else np.ascontiguousarray(
                    data).tobytes()
                out[name] = hashlib.sha256(raw).hexdigest()
        h5.visititems(visit)
        out.update({f"attr:{k}": str(v) for k, v in h5.attrs.items()})
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_changing_validation_and_test_maps_changes_no_method_output(tmp_path, rng):
    inputs = write_lognormal_fits(tmp_path / "in", 14, 0.7, rng, "map_")
    cfg = {"inputs": [{"format": "fits", "pattern": str(inputs / "*.fits")}], "channels": "replicate",
           "normalize": {"transform": "log10", "gaussianize": True, "percentiles": [0, 100]},
           "n_fewshot": 6, "n_validation": 3}
    tensors = tmp_path / "tensors.h5"
    ingest_dataset("clouds", cfg, tensors, tmp_path / "rejected.csv", resolution=8, seed=2)
    model = tiny_eps_model().eval()
    first = _methods(tmp_path / "first", tensors, model)
    before = {p.name: _contents(p) for p in first}
    assert {"latents.h5", "discovered.h5", "samples.h5", "candidates.h5", "selected.h5", "empirical.h5"} <= set(before)

    # other validation and test maps: extreme values, new names; the few-shot rows untouched
    with h5py.File(tensors, "r+") as h5:
        split = np.array([s.decode() if isinstance(s, bytes) else s for s in h5["split"][()]])
        unseen = np.flatnonzero(split != "fewshot")
        assert len(unseen) == 8
        h5["x"][unseen] = np.where(rng.random(h5["x"][unseen].shape) < 0.5, -1.0, 1.0).astype(np.float32)
        h5["physical"][unseen] = (1e4 * rng.random(h5["physical"][unseen].shape)).astype(np.float32)
        h5["clipped"][unseen] = 1
        names = h5["names"][()]
        names[unseen] = [f"other_{i}".encode() for i in range(len(unseen))]
        h5["names"][...] = names
    shutil.rmtree(tmp_path / "first_copy", ignore_errors=True)
    (tmp_path / "first").rename(tmp_path / "first_copy")
    second = _methods(tmp_path / "first", tensors, model)  # the same paths, so recorded paths agree
    after = {p.name: _contents(p) for p in second}
    assert set(after) == set(before)
    for name in before:
        assert after[name] == before[name], name
