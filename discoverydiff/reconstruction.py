"""How well inversion and decoding return the targets: per-image error tables.

Apart from the engine (no torch import), so rule reconstruction_table starts without torch's
import cost (about 3.5 s per job on the development machine).
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .normalize import NormalizationRecord
from .store import SPLIT_FEWSHOT, iter_batches, read_attrs


def count_rows(path, split: str | None) -> int:
    """Rows of a tensor file, or of one of its splits."""
    import h5py

    with h5py.File(path, "r") as h5:
        if split is None:
            return h5["x"].shape[0]
        labels = h5["split"][()] if "split" in h5 else None
    if labels is None:
        raise InputError(path, f"asked for split {split!r} but the file has no 'split' dataset")
    return int(sum((s.decode() if isinstance(s, bytes) else s) == split for s in labels))


def psnr(mse: np.ndarray, peak_to_peak: float = 2.0) -> np.ndarray:
    """PSNR in dB of images in [-1, 1] (peak-to-peak range 2)."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(peak_to_peak**2 / np.asarray(mse, dtype=np.float64))


def reconstruction_table(images_path, reconstruction_path, split: str | None = SPLIT_FEWSHOT,
                         batch_size: int = 64):
    """Per-image MSE / PSNR (normalized space) and the relative error in physical units.

    The physical error is the median over pixels of |x_rec - x| / |x| after mapping both
    through the dataset's normalization record (for log10 fields, a median relative error);
    pixels whose true value is 0 are left out (NaN for an image of zeros).
    Both files are streamed in batches, so memory does not grow with the set.
    """
    import pandas as pd

    record_json = read_attrs(images_path).get("normalization")
    record = NormalizationRecord.from_json(record_json) if record_json else None
    names, mse, rel_err = [], [], []
    zero = _physical_zero(record) if record is not None else None
    pairs = zip(iter_batches(images_path, batch_size, split), iter_batches(reconstruction_path, batch_size))
    for (_, real, real_names), (_, rec, rec_names) in pairs:
        if rec_names != real_names:
            raise InputError(reconstruction_path, f"rows do not correspond to {images_path} ({split} split)")
        real, rec = real.astype(np.float64), rec.astype(np.float64)
        names += real_names
        mse.append(((rec - real) ** 2).reshape(len(real), -1).mean(axis=1))
        if record is not None:
            phys_real, phys_rec = record.to_physical(real), record.to_physical(np.clip(rec, -1, 1))
            # relative error is undefined where the true value is 0 (e.g. black sky in 8-bit cutouts),
            # which the float32 round trip may have turned into a tiny number
            nonzero = (phys_real != 0) & (phys_real != zero)
            rel = np.full(phys_real.shape, np.nan)
            np.divide(np.abs(phys_rec - phys_real), np.abs(phys_real), out=rel, where=nonzero)
            rel = rel.reshape(len(rel), -1)
            per_image = np.full(len(rel), np.nan)
            has = np.isfinite(rel).any(axis=1)
            per_image[has] = np.nanmedian(rel[has], axis=1)
            rel_err.append(per_image)
    if len(names) != count_rows(images_path, split) or len(names) != count_rows(reconstruction_path, None):
        raise InputError(reconstruction_path, f"row count differs from {images_path} ({split} split)")
    mse = np.concatenate(mse)
    table = pd.DataFrame({"name": names, "mse_normalized": mse, "psnr_db": psnr(mse)})
    if record is not None:
        unit = ",".join(u or "dimensionless" for u in record.units)
        table[f"median_relative_error_physical [{unit}]"] = np.concatenate(rel_err)
    return table


def _physical_zero(record: NormalizationRecord) -> np.ndarray:
    """(1, C, 1, 1): what a physical 0 reads after the record's float32 round trip (NaN where 0
    lies outside the record's range or domain, e.g. under log10, so that no pixel matches)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        normalized, clipped = record.to_normalized(np.zeros((1, record.source_channels, 1, 1)))
    back = record.to_physical(normalized)
    back[clipped.reshape(back.shape) | ~np.isfinite(back)] = np.nan
    return back


__all__ = ["count_rows", "psnr", "reconstruction_table"]
