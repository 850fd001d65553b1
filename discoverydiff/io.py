"""Readers for the raw inputs: FITS images and cubes, HDF5 stacks, JPEG/PNG cutouts.

Each reader opens its file read-only and returns a list of :class:`RawField`, one per map,
each (C, H, W) float64 in the file's physical units. Anything wrong with a file raises
:class:`~discoverydiff.errors.InputError` naming the file and the problem; nothing is
ever written back to an input.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError, InputError

log = logging.getLogger(__name__)

FITS_CUBE_AXES = ("channels", "stack")
HDF5_LAYOUTS = ("HW", "CHW", "HWC", "NHW", "NCHW", "NHWC")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp")


@dataclass
class RawField:
    """One map (or one multi-channel image) as read from a file.

    Attributes
    ----------
    data : ndarray, shape (C, H, W), float64
        Physical values, in ``units``.
    name : str
        ``file`` or ``file[index]`` for a map taken from a stack.
    units : list of str
        Unit string of each channel as found in the file ("" when absent).
    channel_names : list of str
    header : dict
        The WCS of the image plane as FITS keywords (:func:`wcs_cards`), empty when the
        file has none.
    """

    data: np.ndarray
    name: str
    units: list
    channel_names: list
    header: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- FITS
def _fits_is_image(hdu) -> bool:
    from astropy.io import fits

    return (isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))
            and hdu.header.get("NAXIS", 0) >= 2)


def _select_hdu(hdul, path, hdu):
    if hdu is None:
        for candidate in hdul:
            if _fits_is_image(candidate):
                return candidate
        raise InputError(path, "no HDU holds image data (NAXIS >= 2)")
    try:
        chosen = hdul[hdu]
    except (KeyError, IndexError):
        names = [h.name or str(i) for i, h in enumerate(hdul)]
        raise InputError(path, f"has no HDU {hdu!r}; its HDUs are {names}") from None
    if not _fits_is_image(chosen):
        raise InputError(path, f"HDU {hdu!r} ({type(chosen).__name__}) holds no image data")
    return chosen


def _check_fits_complete(hdul, path):
    """Name truncation plainly instead of astropy's reshape error."""
    size = os.path.getsize(path)
    for i in range(len(hdul)):
        info = hdul.fileinfo(i)
        if info is None:
            continue
        end = info["datLoc"] + info["datSpan"]
        if end > size:
            raise InputError(path, f"is truncated: HDU {i} needs {end} bytes, the file has {size}")


_WCS_MARKERS = ("CTYPE1", "CRPIX1", "CRVAL1", "CDELT1", "CD1_1", "PC1_1")


def wcs_cards(header, source="") -> dict:
    """The WCS of a FITS image plane (axes 1 and 2) as astropy.wcs writes it: keyword -> value.

    Read with :class:`astropy.wcs.WCS` and written back with ``to_header(relax=True)``, so
    every keyword wcslib knows survives: CD or PC/CDELT, PVi_m projection parameters, SIP
    distortion (A_/B_/AP_/BP_), DATE-OBS/MJD-OBS, RADESYS, EQUINOX. A header without WCS
    keywords gives ``{}``; one astropy cannot read gives ``{}`` and a logged warning naming
    ``source``. Lookup-table distortions (CPDIS/D2IM, kept in other HDUs) are not carried.
    """
    if not any(k in header for k in _WCS_MARKERS):
        return {}
    from astropy.wcs import WCS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FITSFixedWarning: wcslib's own fixes are fine
            cards = WCS(header, naxis=2).to_header(relax=True)
    except Exception as exc:  # astropy.wcs raises several types for a malformed WCS
        log.warning("%s: its WCS could not be read by astropy.wcs (%s); its maps carry no WCS", source, exc)
        return {}
    return {key: cards[key] for key in cards if key not in ("COMMENT", "HISTORY", "")}


def read_fits(path, hdu=None, cube_axis: str = "channels") -> list[RawField]:
    """Read a 2-D image or a 3-D cube from a FITS file.

    Parameters
    ----------
    path : str or Path
    hdu : int, str, list or None
        HDU index or EXTNAME; a list reads several 2-D HDUs as the channels of one map;
        None takes the first HDU with image data. Tile-compressed HDUs
        (``CompImageHDU``) are read transparently; BZERO/BSCALE scaling is applied and
        BLANK integers become NaN (and so are rejected as undefined pixels).
    cube_axis : {"channels", "stack"}
        What the first axis of a 3-D cube is: the channels of one map (bands or fields;
        BANDi/CHANNELi keywords name them) or a stack of independent 2-D maps.

    Returns
    -------
    list of RawField
    """
    from astropy.io import fits

    if cube_axis not in FITS_CUBE_AXES:
        raise ConfigError(f"cube_axis must be one of {FITS_CUBE_AXES}, got {cube_axis!r}")
    path = Path(path)
    if isinstance(hdu, (list, tuple)):
        parts = [read_fits(path, h, cube_axis)[0] for h in hdu]
        shapes = {p.data.shape[1:] for p in parts}
        if len(shapes) != 1 or any(p.data.shape[0] != 1 for p in parts):
            raise InputError(path, f"HDUs {list(hdu)} are not 2-D maps of one shape ({sorted(shapes)})")
        return [RawField(np.concatenate([p.data for p in parts]), str(path),
                         [p.units[0] for p in parts], [str(h) for h in hdu], parts[0].header)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy's verify chatter; real problems raise below
            with fits.open(path, mode="readonly", memmap=False, lazy_load_hdus=False) as hdul:
                _check_fits_complete(hdul, path)
                chosen = _select_hdu(hdul, path, hdu)
                data = chosen.data
                header = chosen.header
                data = None if data is None else np.array(data, dtype=np.float64)
    except InputError:
        raise
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise InputError(path, f"is not a readable FITS file ({exc})") from None
    if data is None:
        raise InputError(path, "the selected HDU has no data")
    unit = str(header.get("BUNIT", "")).strip()
    wcs = wcs_cards(header, path)
    if data.ndim == 2:
        return [RawField(data[None], str(path), [unit], [str(header.get("EXTNAME", "") or "field")], wcs)]
    if data.ndim == 3:
        if cube_axis == "channels":
            names = [str(header.get(f"BAND{i}", header.get(f"CHANNEL{i}", f"c{i}"))).strip()
                     for i in range(data.shape[0])]
            return [RawField(data, str(path), [unit] * data.shape[0], names, wcs)]
        return [RawField(plane[None], f"{path}[{i}]", [unit], ["field"], wcs)
                for i, plane in enumerate(data)]
    raise InputError(path, f"image data has {data.ndim} dimensions {data.shape}; "
                           "expected a 2-D map or a 3-D cube")


# --------------------------------------------------------------------------- HDF5
def _to_nchw(array: np.ndarray, layout: str, path, key) -> np.ndarray:
    if array.ndim != len(layout):
        raise InputError(path, f"dataset {key!r} has shape {array.shape} ({array.ndim}-D) "
                               f"but layout {layout!r} is {len(layout)}-D")
    full = layout if "N" in layout else "N" + layout
    if "N" not in layout:
        array = array[None]
    if "C" not in full:
        full = full[0] + "C" + full[1:]
        array = array[:, None]
    return np.transpose(array, [full.index(a) for a in "NCHW"])


#: Bytes of maps (float64) an HDF5 stack is read at a time: memory stays at one block whatever its length.
HDF5_BLOCK_BYTES = 64 * 2**20


def read_hdf5(path, dataset, layout: str = "NHW", units_attr: str = "units") -> list[RawField]:
    """Read maps from one or more HDF5 datasets (all of them: :func:`iter_hdf5` streams them).

    Parameters
    ----------
    path : str or Path
    dataset : str or list of str
        Dataset path(s) inside the file, e.g. ``"G0"`` or ``"/snap_100/G0"``. A list
        stacks several fields (same shape) as the channels of each map.
    layout : str
        Axis order of each dataset: one of ``HW``, ``CHW``, ``HWC``, ``NHW``, ``NCHW``,
        ``NHWC`` (N maps, C channels, H rows, W columns).
    units_attr : str
        Attribute holding the unit string, looked up on the dataset, then on the file.
    """
    return list(iter_hdf5(path, dataset, layout, units_attr))


def iter_hdf5(path, dataset, layout: str = "NHW", units_attr: str = "units",
              block_bytes: int | None = None) -> Iterator[RawField]:
    """The maps of one or more HDF5 datasets (as :func:`read_hdf5`), read ``block_bytes`` at a time.

    The datasets' shapes and layout are checked before any data is read; a block that cannot
    be read (a truncated file) raises :class:`InputError` naming the file and the maps, after
    the maps of the blocks before it were yielded.
    """
    import h5py

    if layout not in HDF5_LAYOUTS:
        raise ConfigError(f"HDF5 layout must be one of {HDF5_LAYOUTS}, got {layout!r}")
    path = Path(path)
    keys = [dataset] if isinstance(dataset, str) else list(dataset)
    if not keys:
        raise ConfigError(f"no HDF5 dataset named for {path}")
    block_bytes = HDF5_BLOCK_BYTES if block_bytes is None else int(block_bytes)
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(path, f"is not a readable HDF5 file ({exc})") from None
    with h5:
        nodes, units = [], []
        for key in keys:
            if key not in h5:
                raise InputError(path, f"has no dataset {key!r}; top-level keys are {sorted(h5.keys())}")
            node = h5[key]
            if not isinstance(node, h5py.Dataset):
                raise InputError(path, f"{key!r} is a group, not a dataset; it holds {sorted(node.keys())}")
            if node.ndim != len(layout):
                raise InputError(path, f"dataset {key!r} has shape {node.shape} ({node.ndim}-D) "
                                       f"but layout {layout!r} is {len(layout)}-D")
            nodes.append(node)
            unit = node.attrs.get(units_attr, h5.attrs.get(units_attr, ""))
            units.append(unit.decode() if isinstance(unit, bytes) else str(unit))
        shapes = {_nchw_shape(node.shape, layout) for node in nodes}
        if len(shapes) != 1:
            raise InputError(path, f"datasets {keys} have different shapes {sorted(shapes)}")
        n, c, h, w = shapes.pop()
        if len(keys) > 1 and c != 1:
            raise InputError(path, "stacking several datasets as channels needs single-channel datasets")
        channel_units = units if len(keys) > 1 else units * c
        names = keys if len(keys) > 1 else [keys[0].strip("/")] * c
        step = max(1, block_bytes // (8 * c * h * w * len(keys)))
        for start in range(0, n, step):
            stop = min(start + step, n)
            arrays = []
            for key, node in zip(keys, nodes):
                where = tuple(slice(start, stop) if axis == "N" else slice(None) for axis in layout)
                try:
                    array = np.asarray(node[where], dtype=np.float64)
                except (OSError, ValueError, TypeError) as exc:
                    raise InputError(path, f"dataset {key!r} is unreadable at maps {start}..{stop - 1}, the file "
                                           f"may be truncated ({exc})") from None
                arrays.append(_to_nchw(array, layout, path, key))
            stack = np.concatenate(arrays, axis=1) if len(arrays) > 1 else arrays[0]
            for i in range(stop - start):
                yield RawField(stack[i], f"{path}[{start + i}]", list(channel_units), list(names))


def _nchw_shape(shape: tuple, layout: str) -> tuple[int, int, int, int]:
    """(N, C, H, W) of a dataset of ``shape`` in ``layout`` (N and C are 1 where the layout has none)."""
    sizes = dict(zip(layout, shape))
    return tuple(int(sizes.get(axis, 1)) for axis in "NCHW")


# --------------------------------------------------------------------------- images
def read_image(path, mode: str = "RGB", dtype=np.float64) -> list[RawField]:
    """Read a JPEG/PNG cutout (e.g. a Galaxy Zoo 424x424 gri composite) as (C, H, W) 0..255.

    Parameters
    ----------
    path : str or Path
    mode : {"RGB", "L"}
        Pillow mode to convert to; ``RGB`` also turns grey-scale or palette images into
        three channels.
    dtype : numpy dtype
        Of the returned data: float64, or ``uint8`` (Pillow's own values, exactly; a
        caller that crops first converts a fifth of a Galaxy Zoo cutout to float, not all of it).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()  # decode now so a truncated file fails here, not later
            array = np.asarray(img.convert(mode), dtype=dtype)
    except UnidentifiedImageError:
        raise InputError(path, "is not an image Pillow can read") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(path, f"is unreadable or truncated ({exc})") from None
    if array.ndim == 2:
        array = array[..., None]
    names = list(mode) if mode == "RGB" else ["L"]
    return [RawField(np.moveaxis(array, -1, 0), str(path), [""] * array.shape[-1], names)]


def read_raw_fields(path, spec: dict) -> list[RawField]:
    """Dispatch on ``spec['format']`` (``fits``, ``hdf5``, ``image``) with its options."""
    return list(iter_raw_fields(path, spec))


def iter_raw_fields(path, spec: dict, image_dtype=np.float64) -> Iterator[RawField]:
    """The maps of one file, as :func:`read_raw_fields`, an HDF5 stack block by block (:func:`iter_hdf5`)."""
    fmt = spec.get("format")
    if not Path(path).exists():
        raise InputError(path, "file does not exist")
    if fmt == "fits":
        return iter(read_fits(path, spec.get("hdu"), spec.get("cube_axis", "channels")))
    if fmt == "hdf5":
        if not spec.get("dataset"):
            raise ConfigError(f"HDF5 input {spec.get('pattern')!r} needs 'dataset' (the path inside the file)")
        return iter_hdf5(path, spec["dataset"], spec.get("layout", "NHW"), spec.get("units_attr", "units"))
    if fmt == "image":
        return iter(read_image(path, spec.get("mode", "RGB"), image_dtype))
    raise ConfigError(f"input format must be fits, hdf5 or image, got {fmt!r}")
