"""Fixtures that write small but real input files (astropy FITS, h5py, Pillow images)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest


def sha256_tree(root: Path) -> dict:
    """Content hash of every file under ``root``: proves inputs were not modified."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def lognormal_maps(rng):
    """Eight positive 48x48 G0-like maps spanning several decades."""
    return np.exp(rng.normal(0.0, 2.0, size=(8, 48, 48))) * 10.0


@pytest.fixture
def fits_dir(tmp_path, lognormal_maps):
    """One FITS file per map, BUNIT Habing, sharing one WCS."""
    from astropy.io import fits

    out = tmp_path / "fits"
    out.mkdir()
    for i, m in enumerate(lognormal_maps):
        hdu = fits.PrimaryHDU(m.astype(np.float32))
        hdu.header["BUNIT"] = "Habing"
        hdu.header["CTYPE1"], hdu.header["CTYPE2"] = "RA---TAN", "DEC--TAN"
        hdu.header["CRVAL1"], hdu.header["CRVAL2"] = 83.8, -5.4
        hdu.header["CDELT1"], hdu.header["CDELT2"] = -1e-3, 1e-3
        hdu.header["CRPIX1"], hdu.header["CRPIX2"] = 24.5, 24.5
        hdu.writeto(out / f"map_{i:02d}.fits")
    return out
