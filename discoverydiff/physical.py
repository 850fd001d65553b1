"""Back to physical units: tensor files -> maps in their units -> FITS or HDF5.

A sample in [-1, 1] goes back through the normalization record of the dataset it was
generated for (the tensor file attribute ``normalization``): G0 maps come back in Habing,
Galaxy Zoo 8-bit images to their 0-255 scale, Legacy Survey cutouts (``lupton``) to
nanomaggies. The writers put the unit (``BUNIT``), the settings that produced the samples
and their provenance into the header (FITS) or the attributes (HDF5), and, when the input
maps shared one, a WCS corrected for the crop and resampling done at ingest (see
:func:`resampled_wcs_header`). Nothing clipped is hidden: every FITS file has an image
extension ``CLIPPED`` (uint8, 1 where the value sits at a clip bound and is not the
model's own), every HDF5 file a ``clipped`` dataset, and HISTORY cards say what was done
to the data. Every output appears under its final name only once it is complete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from pathlib import Path

import numpy as np

from .errors import ConfigError, InputError
from .normalize import NormalizationRecord
from .store import _encode_attr, atomic_path, has_dataset, read_attrs, read_tensor_file

log = logging.getLogger(__name__)

FITS_MODES = ("multi", "per_sample")

# Tensor-file attribute -> (FITS keyword, comment). Keywords are at most 8 characters;
# long string values continue on CONTINUE cards (the FITS long-string convention).
_PROVENANCE_CARDS = {
    "kind": ("KIND", "what the rows were: images, samples, ..."),
    "dataset": ("DATASET", "discoverydiff dataset name"),
    "model": ("MODEL", "diffusion model"),
    "t0": ("T0", "DDIM inversion / generation timestep"),
    "n_steps": ("NSTEPS", "DDIM steps"),
    "eta": ("ETA", "DDIM eta (0: deterministic)"),
    "seed": ("SEED", "random seed"),
    "config_sha256": ("CFGSHA", "SHA-256 of dataset section, model size, seed"),
    "discoverydiff_version": ("DDVERS", "discoverydiff version that wrote the tensors"),
    "source": ("SRCFILE", "tensor file the samples were decoded from"),
    "split": ("SPLIT", "split of the dataset"),
}
_SKIPPED_ATTRS = {"normalization", "wcs"}
_EXTNAME_MAX = 60
CLIPPED_EXTNAME = "CLIPPED"


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def record_from_attrs(attrs: dict, path) -> NormalizationRecord:
    """The normalization record of a tensor file, or an InputError naming the file."""
    raw = attrs.get("normalization")
    if raw is None or raw == "" or raw == "null":
        raise InputError(path, "has no 'normalization' attribute, so its values cannot be mapped back to "
                               "physical units; samples must carry the record of the dataset they were "
                               "generated for (copy attrs['normalization'] from the dataset's tensors.h5)")
    try:
        return NormalizationRecord.from_json(raw)
    except (ConfigError, ValueError, TypeError) as exc:
        raise InputError(path, f"its 'normalization' attribute is not a valid record ({exc})") from None


def to_physical_maps(tensor_path, return_names: bool = False):
    """Map every row of a tensor file back to physical units.

    Parameters
    ----------
    tensor_path : str or Path
        A tensor file (images, reconstructions or samples) whose attribute
        ``normalization`` holds the record of its dataset.
    return_names : bool
        Also return the row names.

    Returns
    -------
    physical : numpy.ndarray, shape (N, C_source, H, W), float64
        In ``record.units`` (one unit per source channel).
    record : NormalizationRecord
    attrs : dict
        The file's attributes (JSON values decoded).
    names : list of str
        Only with ``return_names``.

    Raises
    ------
    InputError
        The file is unreadable, has no (or an invalid) record, or its channels do not
        match the record's model channels.
    """
    tensors = read_tensor_file(tensor_path)
    record = record_from_attrs(tensors.attrs, tensor_path)
    if tensors.x.shape[1] != record.model_channels:
        raise InputError(tensor_path, f"has {tensors.x.shape[1]} channel(s) but its normalization record maps "
                                      f"{record.model_channels} model channel(s)")
    physical = record.to_physical(tensors.x)
    if return_names:
        return physical, record, tensors.attrs, tensors.names
    return physical, record, tensors.attrs


def real_physical_maps(tensors_path, split: str | None = None):
    """The real maps of a dataset in physical units, unclipped, with their clip mask.

    Parameters
    ----------
    tensors_path : the dataset's ``tensors.h5``.
    split : ``fewshot``, ``heldout`` or None for all rows.

    Returns
    -------
    physical : ndarray (N, C_source, H, W) float64
        The resampled maps as ingest measured them (dataset ``physical``), tails included,
        beyond the record's lo/hi. A file from before that dataset existed falls back to
        ``record.to_physical(x)`` (clipped), with a warning.
    clipped : ndarray (N, C_source, H, W) bool
        Pixels that ingest clipped to [-1, 1] (or the transform lost).
    names : list of str
    record : NormalizationRecord
    """
    from .stats.sources import RealMaps  # the same reader the statistics stream with

    maps = RealMaps(tensors_path, split, record_from_attrs(read_attrs(tensors_path), tensors_path))
    values, mask = maps.rows(np.arange(len(maps)))
    return values, mask, maps.names, maps.record


def to_rgb_uint8(physical, record: NormalizationRecord) -> np.ndarray:
    """8-bit RGB for display: (N, C_source, H, W) physical -> (N, H, W, 3) uint8.

    The image goes through the record's forward transform to [-1, 1] and is mapped
    linearly to 0-255: for Galaxy Zoo JPEGs (``linear``, lo 0, hi 255) this is the
    original 8-bit scale, for ``lupton`` records the Lupton et al. (2004) colour image,
    for a single replicated field a grey image. Channel order is the record's.
    """
    if record.model_channels != 3:
        raise ValueError(f"an RGB image needs 3 model channels, the record has {record.model_channels}")
    normalized, _ = record.to_normalized(physical)
    rgb = (normalized.astype(np.float64) + 1.0) * 127.5
    return np.moveaxis(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), 1, -1)


# --------------------------------------------------------------------------------------
# WCS after crop and resampling
# --------------------------------------------------------------------------------------


def _crop_and_scale(geometry: dict):
    """(top, left, side, scale) of ingest's centre crop and resampling, or None without one shape."""
    shapes = [tuple(s) for s in geometry.get("source_shapes") or []]
    resolution = geometry.get("resolution")
    if len(shapes) != 1 or resolution is None:
        return None
    h, w = shapes[0]
    pixels = geometry.get("crop_pixels")
    fraction = geometry.get("crop_fraction", 1.0)
    # Same expression as ingest.center_crop, so the offsets agree pixel for pixel.
    side = pixels if pixels is not None else max(1, int(round(fraction * min(h, w))))
    return (h - side) // 2, (w - side) // 2, side, side / float(resolution)


def _scale_sip(sip, scale: float, crpix):
    """SIP polynomials for pixels ``scale`` times larger: A_pq -> A_pq scale^(p + q - 1).

    SIP corrects pixel offsets u = x - CRPIX by polynomials in pixel units; with u = scale u'
    the correction in new pixels is f(scale u', scale v') / scale.
    """
    from astropy.wcs import Sip

    def scaled(coefficients):
        if coefficients is None:
            return None
        c = np.array(coefficients, dtype=np.float64)
        p, q = np.indices(c.shape)
        return c * scale ** (p + q - 1.0)

    return Sip(scaled(sip.a), scaled(sip.b), scaled(sip.ap), scaled(sip.bp), crpix)


def resampled_wcs_header(wcs: dict | None, geometry: dict) -> dict | None:
    """The input WCS, corrected for the centre crop and resampling of ingest, as FITS keywords.

    The keywords (tensor-file attribute ``wcs``, from :func:`discoverydiff.io.wcs_cards`)
    are read into an :class:`astropy.wcs.WCS`; the crop is ``WCS.slice`` of the square of
    ``side`` pixels at row ``top = (H - side) // 2``, column ``left = (W - side) // 2``
    (what ``ingest.center_crop`` keeps); the resampling to ``resolution`` pixels makes
    output pixel edges fall every ``s = side / resolution`` input pixels, so in 1-based
    pixel coordinates

        CRPIX_new = (CRPIX_crop - 1/2) / s + 1/2,   CDELT (or CD) scaled by s,

    and SIP coefficients A_pq, B_pq, AP_pq, BP_pq scaled by s^(p+q-1) (astropy's slice takes
    integer steps only and leaves SIP unscaled). CRVAL, the projection (PVi_m), DATE-OBS and
    the other keywords are unchanged, so every output pixel centre has the world coordinate
    of the same position in the original map.

    Returns
    -------
    dict or None
        The corrected keywords, or None when there is no WCS, or the inputs had several
        shapes (then no single WCS describes the outputs; logged).
    """
    if not wcs:
        return None
    geometry_ok = _crop_and_scale(geometry)
    if geometry_ok is None:
        log.warning("the inputs' WCS is dropped from the outputs: the inputs had several shapes %s before "
                    "cropping and resampling, so no single WCS describes the maps",
                    geometry.get("source_shapes"))
        return None
    import warnings

    from astropy.io import fits
    from astropy.wcs import WCS

    top, left, side, scale = geometry_ok
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FITSFixedWarning about wcslib's own fixes
        original = WCS(fits.Header(list(wcs.items())), naxis=2)
        out = original.slice((slice(top, top + side), slice(left, left + side)))
        crpix = (np.array(out.wcs.crpix, dtype=np.float64) - 0.5) / scale + 0.5
        out.wcs.crpix = crpix
        if out.wcs.has_cd():
            out.wcs.cd = np.array(out.wcs.cd) * scale
        else:
            out.wcs.cdelt = np.array(out.wcs.cdelt) * scale
        if out.sip is not None:
            out.sip = _scale_sip(out.sip, scale, crpix)
        cards = out.to_header(relax=True)
    return {key: cards[key] for key in cards if key not in ("COMMENT", "HISTORY", "")}


# --------------------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------------------


def _ascii(text) -> str:
    return str(text).encode("ascii", "backslashreplace").decode("ascii")


def _card_value(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else _ascii(value)
    if isinstance(value, (dict, list, tuple)):
        return _ascii(json.dumps(value, sort_keys=True))
    return _ascii(value)


def _set_card(header, keyword: str, value, comment: str = "") -> None:
    """Set a card; a value too long for a HIERARCH card goes to COMMENT cards instead."""
    from astropy.io import fits

    value = _card_value(value)
    if isinstance(value, str) and len(value) > 40:
        comment = ""  # astropy would truncate it with a warning; the keyword says enough
    try:
        card = fits.Card(keyword, value, comment)
        card.verify("exception")
        str(card)  # long HIERARCH cards fail only when rendered
        header.append(card, end=True)
    except (ValueError, fits.VerifyError):
        text = f"{keyword.replace('HIERARCH ', '')} = {value}"
        for start in range(0, len(text), 70):
            header.add_comment(text[start:start + 70])


def provenance_header(attrs: dict, record: NormalizationRecord):
    """FITS cards of the producing settings and provenance.

    Known attributes get short keywords (KIND, DATASET, MODEL, T0, NSTEPS, ETA, SEED,
    CFGSHA, DDVERS, SRCFILE, SPLIT); the normalization is TRANSFRM plus the whole record
    as JSON in DDNORM (long strings continue on CONTINUE cards); any other scalar
    attribute becomes ``HIERARCH DD <NAME>``, or COMMENT lines when it does not fit.
    """
    from astropy.io import fits

    header = fits.Header()
    header["ORIGIN"] = ("discoverydiff", "written by discoverydiff.physical")
    header["TRANSFRM"] = (record.transform, "normalization transform T")
    for key, (keyword, comment) in _PROVENANCE_CARDS.items():
        value = attrs.get(key)
        if value is not None:
            _set_card(header, keyword, value, comment)
    for key in sorted(attrs):
        if key in _PROVENANCE_CARDS or key in _SKIPPED_ATTRS or attrs[key] is None:
            continue
        _set_card(header, f"HIERARCH DD {_ascii(key).upper()}", attrs[key])
    header["DDNORM"] = (_ascii(record.to_json()), "normalization record (JSON)")
    inverse = "T^-1(A^-1(...))" if record.gaussianize is not None else "T^-1(...)"
    header.add_comment(f"Physical values = {inverse} of (y + 1) / 2 (hi - lo) + lo, y the model output in [-1, 1].")
    return header


def history_lines(record: NormalizationRecord, attrs: dict, clipped: np.ndarray) -> list[str]:
    """What was done to the data, as FITS HISTORY text (and the HDF5 ``history`` attribute)."""
    geometry = record.geometry or {}
    lines = []
    if geometry:
        crop = (f"{geometry['crop_pixels']} px" if geometry.get("crop_pixels") is not None
                else f"fraction {geometry.get('crop_fraction', 1.0)}")
        lines.append(f"Ingest: centre square crop ({crop}) of maps of shape(s) {geometry.get('source_shapes')}, "
                     f"resampled with '{geometry.get('resample')}' to {geometry.get('resolution')} px.")
    bounds = (f"percentiles {record.percentiles} of the {record.fitted_on} maps" if record.percentiles
              else "set in the config")
    scores = ""
    if record.gaussianize is not None:
        scores = (f" with T followed by the normal-score map A of the {record.fitted_on} maps "
                  f"({len(record.gaussianize['knots'][0])} knots in DDNORM; lo and hi are normal scores)")
    lines.append(f"Normalized: y = 2 (T(x) - lo) / (hi - lo) - 1, T = {record.transform}{scores}, lo = {record.lo}, "
                 f"hi = {record.hi} ({bounds}), clipped to [-1, 1]; at ingest "
                 f"{100 * record.clipped_fraction:.3g}% of the {record.fitted_on} maps' pixels were clipped"
                 + (f" ({100 * record.transform_clipped_fraction:.3g}% inside the transform)"
                    if record.transform_clipped_fraction else "") + ".")
    kind = attrs.get("kind", "rows")
    if kind != "images":
        lines.append(f"These are {kind} (model {attrs.get('model')}) mapped back with T^-1((y + 1) / 2 (hi - lo) + lo) "
                     "after clipping y to [-1, 1].")
    n = int(np.count_nonzero(clipped))
    lines.append(f"{n} of {clipped.size} pixels ({100 * n / max(clipped.size, 1):.3g}%) sit at a clip bound "
                 f"(lo or hi), their true value unknown; extension {CLIPPED_EXTNAME} marks them with 1.")
    return lines


def _clipped_hdu(mask: np.ndarray, wcs: dict | None, names=None):
    """The CLIPPED image extension: uint8, 1 where a value sits at a clip bound."""
    from astropy.io import fits

    hdu = fits.ImageHDU(np.ascontiguousarray(mask, dtype=np.uint8), name=CLIPPED_EXTNAME)
    hdu.header["NCLIPPED"] = (int(np.count_nonzero(mask)), "pixels at a clip bound")
    hdu.header["CLIPFRAC"] = (float(np.count_nonzero(mask)) / max(mask.size, 1), "share of pixels at a clip bound")
    if names is not None:
        hdu.header["NSAMPLES"] = (len(names), "first axis: samples, in the order of the HDUs")
    if wcs:
        for key, value in wcs.items():
            hdu.header[key] = _card_value(value)
    hdu.header.add_comment("1: the value is at the normalization's lo or hi bound (clipped), 0: it is not.")
    return hdu


def _sanitize(name: str) -> str:
    text = re.sub(r"[^A-Za-z0-9_.\-]+", "_", os.path.basename(str(name).rstrip("/\\")) or str(name)).strip("_.")
    return (text or "sample")[-_EXTNAME_MAX:]


def _unique_names(names) -> list[str]:
    seen, out = {}, []
    for name in names:
        base = _sanitize(name)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.append(base if count == 0 else f"{base}_{count}"[-_EXTNAME_MAX:])
    return out


def _uniform_unit(record: NormalizationRecord) -> str | None:
    units = set(record.units)
    return record.units[0] if len(units) == 1 else None


def _image_hdus(data: np.ndarray, name: str, extname: str, record, wcs: dict | None, primary: bool, provenance=None):
    """HDUs of one sample: a 2-D image or a channel cube, or one plane per channel."""
    from astropy.io import fits

    unit = _uniform_unit(record)
    planes = [(data if data.shape[0] > 1 else data[0], extname, unit, None)]
    if unit is None:  # channels in different units cannot share a BUNIT: one HDU per channel
        planes = [(data[c], f"{extname}_{_sanitize(ch)}"[-_EXTNAME_MAX:], record.units[c], c)
                  for c, ch in enumerate(record.channel_names)]
    hdus = []
    for i, (plane, ext, bunit, channel) in enumerate(planes):
        cls = fits.PrimaryHDU if primary and i == 0 and unit is not None else fits.ImageHDU
        hdu = cls(np.ascontiguousarray(plane, dtype=np.float32))
        header = hdu.header
        if provenance is not None and cls is fits.PrimaryHDU:
            header.extend(provenance, end=True)
        if cls is fits.ImageHDU:
            header["EXTNAME"] = ext
        header["BUNIT"] = (bunit, "astropy unit string")
        _set_card(header, "SAMPNAME", name, "sample name (source file and index)")
        if channel is None:
            for c, ch in enumerate(record.channel_names):
                _set_card(header, f"CHANNEL{c}", ch, "name of channel (cube plane) c")
        else:
            _set_card(header, "CHANNEL0", record.channel_names[channel], "channel name")
        if wcs:
            for key, value in wcs.items():
                header[key] = _card_value(value)
        hdus.append(hdu)
    return hdus


def _atomic_write(hdulist, path: Path) -> Path:
    with atomic_path(path) as tmp:
        hdulist.writeto(tmp, output_verify="exception")
    return path


def _check_inputs(physical, names, record, clipped=None) -> tuple[np.ndarray, np.ndarray]:
    physical = np.asarray(physical)
    if physical.ndim != 4 or physical.shape[1] != record.source_channels:
        raise ValueError(f"physical maps must be (N, {record.source_channels}, H, W), got {physical.shape}")
    if len(names) != physical.shape[0]:
        raise ValueError(f"{len(names)} names for {physical.shape[0]} maps")
    if clipped is None:  # the values at the record's bounds are the clipped ones
        clipped = record.clip_mask(record.to_normalized(physical)[0])
    clipped = np.asarray(clipped, dtype=bool)
    if clipped.shape != physical.shape:
        raise ValueError(f"clip mask of shape {clipped.shape} for maps of shape {physical.shape}")
    return physical, clipped


def write_physical_fits(physical, names, record: NormalizationRecord, attrs: dict, out_path=None,
                        mode: str = "multi", out_dir=None, clipped=None) -> list[Path]:
    """Write physical maps as FITS, with units, provenance and the corrected WCS.

    Parameters
    ----------
    physical : ndarray, shape (N, C_source, H, W)
        From :func:`to_physical_maps`; written as float32.
    names : sequence of str
        One per map (the tensor file's ``names``).
    record : NormalizationRecord
        Gives BUNIT (its astropy unit strings), channel names, the transform and the
        ingest geometry.
    attrs : dict
        Tensor-file attributes: provenance cards (:func:`provenance_header`), and ``wcs``
        (a dict of WCS keywords of the inputs) copied after :func:`resampled_wcs_header`.
    out_path : str or Path
        ``multi``: the output file.
    mode : {"multi", "per_sample"}
        ``multi``: one file, an empty primary HDU with the provenance and one ImageHDU per
        sample (EXTNAME the sanitized sample name, SAMPNAME the full name).
        ``per_sample``: one file per sample, ``<sanitized name>.fits`` in ``out_dir``, the map
        in the primary HDU with the provenance.
        A multi-channel sample is a cube (C, H, W) with CHANNEL0.. naming the planes when
        its channels share a unit, else one ImageHDU per channel, each with its BUNIT.
    out_dir : str or Path, optional
        ``per_sample``: the directory (default ``out_path``).
    clipped : ndarray of bool, shape like ``physical``, optional
        Pixels at a clip bound (:meth:`NormalizationRecord.clip_mask` of the model output);
        default the pixels whose value is the record's lo or hi. Written as the last HDU,
        EXTNAME ``CLIPPED`` (multi: all samples, first axis the sample; per_sample: the
        sample's own), with HISTORY cards in the primary header.

    Returns
    -------
    list of Path
        The files written. Each is written under a temporary name and renamed when
        complete; in ``per_sample`` mode nothing is renamed until every file is written.
    """
    from astropy.io import fits

    if mode not in FITS_MODES:
        raise ValueError(f"mode must be one of {FITS_MODES}, got {mode!r}")
    physical, clipped = _check_inputs(physical, names, record, clipped)
    wcs = resampled_wcs_header(attrs.get("wcs"), record.geometry or {})
    provenance = provenance_header(attrs, record)
    if wcs is None and attrs.get("wcs"):
        provenance.add_comment("The inputs' WCS was dropped: they had several shapes before resampling.")
    for line in history_lines(record, attrs, clipped):
        provenance.add_history(line)
    extnames = _unique_names(names)
    squeeze = physical.shape[1] == 1  # a single-channel sample is a 2-D image; its mask too
    if mode == "multi":
        if out_path is None:
            raise ValueError("mode 'multi' needs out_path")
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        primary = fits.PrimaryHDU()
        primary.header.extend(provenance, end=True)
        primary.header["NSAMPLES"] = (physical.shape[0], "number of sample HDUs")
        hdus = [primary]
        for data, name, ext in zip(physical, names, extnames):
            hdus += _image_hdus(data, name, ext, record, wcs, primary=False)
        hdus.append(_clipped_hdu(clipped[:, 0] if squeeze else clipped, wcs, names))
        return [_atomic_write(fits.HDUList(hdus), out_path)]

    if out_dir is None and out_path is None:
        raise ValueError("mode 'per_sample' needs out_dir (or out_path naming a directory)")
    directory = Path(out_dir if out_dir is not None else out_path)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    # every file under its temporary name first: none is renamed into place unless all were written
    with contextlib.ExitStack() as stack:
        for data, mask, name, ext in zip(physical, clipped, names, extnames):
            hdus = _image_hdus(data, name, ext, record, wcs, primary=True, provenance=provenance)
            if not isinstance(hdus[0], fits.PrimaryHDU):
                primary = fits.PrimaryHDU()
                primary.header.extend(provenance, end=True)
                hdus = [primary, *hdus]
            hdus.append(_clipped_hdu(mask[0] if squeeze else mask, wcs))
            final = directory / f"{ext}.fits"
            fits.HDUList(hdus).writeto(stack.enter_context(atomic_path(final)), output_verify="exception")
            written.append(final)
    return written


def write_physical_hdf5(physical, names, record: NormalizationRecord, attrs: dict, out_path,
                        clipped=None) -> Path:
    """Write physical maps as HDF5: dataset ``physical`` (N, C, H, W) float32, ``names`` and ``clipped``.

    ``clipped`` (uint8, like ``physical``) marks the values at a clip bound, as the CLIPPED
    extension of the FITS writer does (``clipped`` argument: see :func:`write_physical_fits`);
    the file's ``history`` attribute says what was done to the data.

    The dataset's attributes: ``units`` and ``channel_names`` (string arrays, one per
    channel), ``bunit`` (when the channels share a unit), ``normalization`` (the record as
    JSON), ``wcs`` (the corrected WCS keywords as JSON, or "null"), and every provenance
    attribute of the tensor file (dicts and lists as JSON); the file root carries the same
    provenance. Written under a temporary name and renamed when complete.
    """
    import h5py

    physical, clipped = _check_inputs(physical, names, record, clipped)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    strings = h5py.string_dtype(encoding="utf-8")
    provenance = {k: v for k, v in attrs.items() if k not in _SKIPPED_ATTRS and v is not None}
    provenance["normalization"] = record.to_json()
    provenance["transform"] = record.transform
    provenance["wcs"] = resampled_wcs_header(attrs.get("wcs"), record.geometry or {})
    with atomic_path(out_path) as tmp:
        with h5py.File(tmp, "w") as h5:
            ds = h5.create_dataset("physical", data=physical.astype(np.float32),
                                   chunks=(1, *physical.shape[1:]) if physical.shape[0] else None)
            h5.create_dataset("names", data=np.array([str(n) for n in names], dtype=object), dtype=strings)
            mask = h5.create_dataset("clipped", data=clipped.astype(np.uint8),
                                     chunks=(1, *clipped.shape[1:]) if clipped.shape[0] else None)
            mask.attrs["meaning"] = "1: the value is at the normalization's lo or hi bound (clipped), 0: it is not"
            h5.attrs["history"] = "\n".join(history_lines(record, attrs, clipped))
            ds.attrs["units"] = np.array(record.units, dtype=object).astype(strings)
            ds.attrs["channel_names"] = np.array(record.channel_names, dtype=object).astype(strings)
            unit = _uniform_unit(record)
            if unit is not None:
                ds.attrs["bunit"] = unit
            for target in (ds, h5):
                for key, value in provenance.items():
                    target.attrs[key] = _encode_attr(value)
    return out_path


def export_physical(tensor_path, out_path, fmt: str = "fits", mode: str = "multi", out_dir=None) -> list[Path]:
    """Tensor file -> physical FITS (``fmt="fits"``) or HDF5 (``fmt="hdf5"``) in one call.

    A dataset's ``tensors.h5`` is written from its unclipped ``physical`` maps and ingest's
    clip mask; any other tensor file through the record, with :meth:`~NormalizationRecord.clip_mask`.
    """
    if has_dataset(tensor_path, "physical"):
        physical, clipped, names, record = real_physical_maps(tensor_path)
        attrs = read_attrs(tensor_path)
    else:
        physical, record, attrs, names = to_physical_maps(tensor_path, return_names=True)
        clipped = record.clip_mask(read_tensor_file(tensor_path).x)
    if fmt == "fits":
        return write_physical_fits(physical, names, record, attrs, out_path, mode=mode, out_dir=out_dir,
                                   clipped=clipped)
    if fmt == "hdf5":
        return [write_physical_hdf5(physical, names, record, attrs, out_path, clipped=clipped)]
    raise ValueError(f"fmt must be 'fits' or 'hdf5', got {fmt!r}")


def export_sample_set(set_path, tensors_path, fits_path, hdf5_path, mode: str = "multi", out_dir=None) -> list[Path]:
    """Map one sample set back to the units of a dataset and write it as FITS and HDF5.

    Discovered and fine-tuned samples carry their dataset's normalization record; the base
    model's samples do not (they belong to no dataset), so every set is mapped through the
    record of ``tensors_path`` and given its WCS, which is what makes the sets comparable.
    """
    samples = read_tensor_file(set_path)
    dataset = read_attrs(tensors_path)
    record = record_from_attrs(dataset, tensors_path)
    if samples.x.shape[1] != record.model_channels:
        raise InputError(set_path, f"has {samples.x.shape[1]} channel(s) but {tensors_path}'s normalization "
                                   f"record maps {record.model_channels} model channel(s)")
    attrs = {**samples.attrs, "normalization": record.to_json(), "dataset": dataset.get("dataset"),
             "wcs": dataset.get("wcs"), "source": str(set_path)}
    physical = record.to_physical(samples.x)
    clipped = record.clip_mask(samples.x)
    log.info("%s: %d of %d pixels (%.3g%%) at a clip bound of %s's record, flagged in CLIPPED / 'clipped'",
             set_path, int(clipped.sum()), clipped.size, 100 * clipped.mean(), tensors_path)
    written = write_physical_fits(physical, samples.names, record, attrs, fits_path, mode=mode, out_dir=out_dir,
                                  clipped=clipped)
    written.append(write_physical_hdf5(physical, samples.names, record, attrs, hdf5_path, clipped=clipped))
    return written
