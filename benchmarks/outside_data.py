"""Two datasets the demo's generators did not make, for trying the workflow on data it was not tuned on.

    python benchmarks/outside_data.py OUTDIR [--n-fields 96] [--seed 2027]

writes

- ``OUTDIR/field/``: log-normal radiation fields. Each map is a Gaussian random field with an
  isotropic power spectrum P(k) ∝ k^slope (default -3.2), made by powerbox (not by
  :mod:`discoverydiff.demo`), scaled to a known variance and exponentiated:
  ``G0 = 10 ** (log10_mean + delta)`` in Habing, so log10 G0 is Gaussian with standard deviation
  ``sigma_dex`` and the given spectrum. One FITS file per map (float32, ``BUNIT = 'Habing'``, a
  celestial TAN WCS, the seed and slope in the header), 128x128 pixels by default.
- ``OUTDIR/galaxy/``: real galaxies. The Hubble Deep Field image that scikit-image ships
  (``skimage.data.hubble_deep_field()``, an 8-bit colour composite) is searched with photutils
  (background mesh, 3-sigma detection on the smoothed luminance); around each source, brightest
  first, an 80x80 pixel JPEG cutout of the colour image is written when the cutout lies inside
  the image, the source's segment covers at least ``--min-area`` pixels, and no brighter chosen
  source lies within ``--min-separation`` pixels (so no two cutouts are centred on one galaxy).
  ``catalogue.csv`` lists each cutout's position, flux and area.

Each folder has a ``manifest.json`` (settings, counts, software versions, SHA-256 of every file).
The same arguments give the same files. A folder that exists is refused unless ``--force``; each
is written to a temporary folder and moved into place whole, so a failed run leaves nothing.
``benchmarks/outside/field.yaml`` and ``galaxy.yaml`` run the workflow on ``resources/outside``
(benchmarks/README.md, "Outside datasets").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HABING_COMMENT = "G0; 1 Habing = 1.6e-3 erg s-1 cm-2 (Habing 1968)"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _versions(*modules) -> dict:
    import importlib

    return {name: getattr(importlib.import_module(name), "__version__", "?") for name in ("numpy", *modules)}


def grf_variance(n: int, slope: float, boxlength: float = 1.0) -> float:
    """Expected variance of powerbox's real Gaussian field on an n x n grid with P(k) = k^slope.

    powerbox draws every Fourier mode with variance P(k) / V (V = boxlength^2; the k = 0 mode
    is zero), so the field's variance is the sum over the grid's nonzero modes of P(k) / V, with
    k = 2 pi fftfreq(n, boxlength / n) per axis (checked against 200 powerbox fields: 0.0226 vs
    0.0223 for n = 128, slope -3.2).
    """
    k1 = 2 * np.pi * np.fft.fftfreq(n, d=boxlength / n)
    k = np.hypot(k1[:, None], k1[None, :])
    power = np.zeros_like(k)
    power[k > 0] = k[k > 0] ** slope
    return float(power.sum() / boxlength**2)


def _wcs_header(size: int, pixel_arcsec: float):
    """Celestial TAN WCS centred in Taurus (a nearby molecular cloud, not the demo's Orion)."""
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crval = [68.0, 26.0]
    wcs.wcs.crpix = [(size + 1) / 2.0, (size + 1) / 2.0]
    wcs.wcs.cdelt = [-pixel_arcsec / 3600.0, pixel_arcsec / 3600.0]
    wcs.wcs.radesys = "ICRS"
    return wcs.to_header()


def _powerbox(n: int, pk, seed: int):
    """powerbox's Gaussian field box of n x n pixels on a unit box."""
    import powerbox

    try:
        return powerbox.PowerBox(shape=(n, n), pk=pk, size=(1.0, 1.0), seed=seed)
    except TypeError:  # powerbox before 1.0 names them N, dim and boxlength
        return powerbox.PowerBox(N=n, dim=2, pk=pk, boxlength=1.0, seed=seed)


def write_fields(out: Path, n: int, size: int, slope: float, log10_mean: float, sigma_dex: float,
                 seed: int) -> dict:
    """``n`` log-normal G0 maps (FITS, Habing) into ``out``; returns the manifest."""
    from astropy.io import fits

    if n < 1 or size < 8:
        raise ValueError(f"need at least 1 field of at least 8 pixels, got {n} of {size}")
    amplitude = sigma_dex**2 / grf_variance(size, slope)  # so that log10 G0 has variance sigma_dex^2

    (out / "fits").mkdir(parents=True)
    files = []
    for i in range(n):
        map_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        box = _powerbox(size, lambda k: amplitude * k**slope, map_seed)
        log10_g0 = log10_mean + box.delta_x()
        header = _wcs_header(size, pixel_arcsec=20.0)
        header["BUNIT"] = ("Habing", HABING_COMMENT)
        header["OBJECT"] = (f"log-normal field {i:03d}", "benchmarks/outside_data.py")
        header["PKSLOPE"] = (slope, "P(k) of log10 G0 is proportional to k**PKSLOPE")
        header["LGMEAN"] = (log10_mean, "[dex] mean of log10 G0")
        header["LGSIGMA"] = (sigma_dex, "[dex] expected std of log10 G0")
        header["SEED"] = (seed, "set seed")
        header["MAPSEED"] = (map_seed, "SeedSequence([SEED, MAPIDX])")
        header["MAPIDX"] = (i, "map index")
        name = f"fits/field_{i:03d}.fits"
        fits.PrimaryHDU((10.0**log10_g0).astype(np.float32), header=header).writeto(out / name)
        files.append(name)
    return {"kind": "log-normal G0 fields", "n": n, "size": size, "slope": slope, "log10_mean": log10_mean,
            "sigma_dex": sigma_dex, "seed": seed, "units": "Habing", "files": files,
            "software": _versions("powerbox", "astropy")}


def find_galaxies(image: np.ndarray, cutout: int, min_area: int, min_separation: float):
    """Sources of an RGB image (H, W, 3), brightest first, whose cutouts are usable.

    Returns a list of dicts (x, y: centroid in pixels, 0-based; flux: background-subtracted
    segment flux of the luminance in 8-bit counts; area in pixels) and the number of detections.
    """
    from astropy.convolution import convolve
    from photutils.background import Background2D, MedianBackground
    from photutils.segmentation import SourceCatalog, detect_sources, make_2dgaussian_kernel

    lum = image.astype(np.float64).mean(axis=2)
    background = Background2D(lum, (64, 64), filter_size=(3, 3), bkg_estimator=MedianBackground())
    data = lum - background.background
    smoothed = convolve(data, make_2dgaussian_kernel(2.0, size=5))
    segments = detect_sources(smoothed, 3.0 * background.background_rms, n_pixels=10)
    catalogue = SourceCatalog(data, segments, convolved_data=smoothed)
    x, y = np.asarray(catalogue.x_centroid), np.asarray(catalogue.y_centroid)
    flux, area = np.asarray(catalogue.segment_flux), np.asarray(catalogue.area.value)
    height, width = lum.shape
    half = cutout // 2
    chosen = []
    for k in np.argsort(-flux, kind="stable"):
        cx, cy = int(round(x[k])), int(round(y[k]))
        if area[k] < min_area or not (half <= cx <= width - half and half <= cy <= height - half):
            continue
        if any((x[k] - c["x"]) ** 2 + (y[k] - c["y"]) ** 2 < min_separation**2 for c in chosen):
            continue
        chosen.append({"x": float(x[k]), "y": float(y[k]), "x0": cx - half, "y0": cy - half,
                       "flux": float(flux[k]), "area": int(area[k])})
    return chosen, int(segments.n_labels)


def write_galaxies(out: Path, cutout: int, min_area: int, min_separation: float, max_galaxies: int | None,
                   quality: int) -> dict:
    """JPEG cutouts of the Hubble Deep Field's brightest sources into ``out``; returns the manifest."""
    import pandas as pd
    from PIL import Image
    from skimage import data

    image = data.hubble_deep_field()
    chosen, detected = find_galaxies(image, cutout, min_area, min_separation)
    if max_galaxies is not None:
        chosen = chosen[:max_galaxies]
    if not chosen:
        raise ValueError("no source of the Hubble Deep Field image passed the cuts; lower --min-area")
    (out / "images").mkdir(parents=True)
    rows = []
    for i, source in enumerate(chosen):
        name = f"images/hdf_{i:03d}.jpg"
        tile = image[source["y0"]:source["y0"] + cutout, source["x0"]:source["x0"] + cutout]
        Image.fromarray(np.ascontiguousarray(tile)).save(out / name, quality=quality)
        rows.append({"GalaxyID": f"hdf_{i:03d}", "file": name, **source})
    pd.DataFrame(rows).to_csv(out / "catalogue.csv", index=False)
    return {"kind": "Hubble Deep Field cutouts", "source": "skimage.data.hubble_deep_field()",
            "image_shape": list(image.shape), "detections": detected, "n": len(rows), "cutout": cutout,
            "min_area": min_area, "min_separation": min_separation, "max_galaxies": max_galaxies,
            "jpeg_quality": quality, "files": [r["file"] for r in rows] + ["catalogue.csv"],
            "software": _versions("skimage", "photutils", "astropy", "PIL")}


def _write(target: Path, force: bool, make) -> dict:
    """Run ``make(tmp)`` in a temporary folder beside ``target`` and move it into place whole."""
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists; remove it or pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        manifest = make(tmp / "data")
        manifest["sha256"] = {name: _sha256(tmp / "data" / name) for name in manifest["files"]}
        (tmp / "data" / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if target.exists():
            shutil.rmtree(target)
        (tmp / "data").rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--only", choices=("field", "galaxy"), default=None, help="write one of the two sets")
    ap.add_argument("--n-fields", type=int, default=96)
    ap.add_argument("--size", type=int, default=128, help="field side in pixels")
    ap.add_argument("--slope", type=float, default=-3.2, help="power-spectrum index of log10 G0")
    ap.add_argument("--log10-mean", type=float, default=1.5, help="mean log10 G0 (G0 in Habing)")
    ap.add_argument("--sigma-dex", type=float, default=0.4, help="standard deviation of log10 G0")
    ap.add_argument("--seed", type=int, default=2027)
    ap.add_argument("--cutout", type=int, default=80, help="galaxy cutout side in pixels")
    ap.add_argument("--min-area", type=int, default=60, help="smallest segment of a galaxy, pixels")
    ap.add_argument("--min-separation", type=float, default=40.0, help="pixels between cutout centres")
    ap.add_argument("--max-galaxies", type=int, default=None)
    ap.add_argument("--quality", type=int, default=95, help="JPEG quality")
    ap.add_argument("--force", action="store_true", help="replace existing folders")
    args = ap.parse_args(argv)
    if not (math.isfinite(args.slope) and args.sigma_dex > 0):
        ap.error("--slope must be finite and --sigma-dex positive")
    try:
        if args.only in (None, "field"):
            m = _write(args.outdir / "field", args.force,
                       lambda d: write_fields(d, args.n_fields, args.size, args.slope, args.log10_mean,
                                              args.sigma_dex, args.seed))
            print(f"{args.outdir / 'field'}: {m['n']} log-normal G0 maps, {m['size']} px, P(k) ∝ k^{m['slope']}")
        if args.only in (None, "galaxy"):
            m = _write(args.outdir / "galaxy", args.force,
                       lambda d: write_galaxies(d, args.cutout, args.min_area, args.min_separation,
                                                args.max_galaxies, args.quality))
            print(f"{args.outdir / 'galaxy'}: {m['n']} cutouts of {m['cutout']} px from {m['detections']} "
                  "detections in the Hubble Deep Field image")
    except (FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
