"""Tensor files: the HDF5 files every stage reads and writes.

Layout (docs/formats.md):

- dataset ``x``: float32, shape (N, C, H, W);
- dataset ``names``: (N,) UTF-8, the source file and index of each row;
- optional dataset ``split``: (N,) UTF-8, ``fewshot``, ``validation``, ``test`` (or ``unused``);
- dataset tensor files (``tensors.h5``) also hold ``physical``: float32 (N, C_source, H, W),
  the resampled maps in physical units before normalization (unclipped; attrs ``units``,
  ``channel_names``), and ``clipped``: uint8 (N, C, H, W) like ``x``, 1 where the value
  was clipped;
- attrs: ``kind`` (images, latents, samples, ...), ``normalization`` (a JSON record),
  the settings that produced the file, ``seed``, ``discoverydiff_version``,
  ``config_sha256``. Dict-valued attrs are stored as JSON strings.

Files are written under a temporary name in the destination directory and renamed
into place only when complete, so a killed job never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from . import __version__
from .errors import InputError

#: The splits of a dataset (tensors.h5 ``split``): the few-shot maps are the only ones any method sees,
#: the validation maps the only ones settings are chosen on, the test maps are read by the statistics
#: alone; rows beyond the configured sizes are ``unused``.
SPLIT_FEWSHOT = "fewshot"
SPLIT_VALIDATION = "validation"
SPLIT_TEST = "test"
SPLIT_UNUSED = "unused"
SPLITS = (SPLIT_FEWSHOT, SPLIT_VALIDATION, SPLIT_TEST, SPLIT_UNUSED)
_STR = h5py.string_dtype(encoding="utf-8")


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (provenance of inputs and weights)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _temporary_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """The one way this package writes an output: to a temporary sibling, renamed into place on success.

    Yields a hidden path next to ``path`` (same directory, so the rename is atomic on one file
    system); write a file or a whole directory there. When the block completes the temporary
    replaces ``path`` (an existing directory is moved aside first and removed after the
    rename); when it raises, the temporary is removed and ``path`` is untouched. A killed job
    therefore never leaves an output that looks complete. Parent directories are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            old = _temporary_sibling(path)
            os.rename(path, old)
            try:
                os.rename(tmp, path)
            except BaseException:
                os.rename(old, path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        _remove(tmp)


def write_csv_atomic(table, path, **to_csv) -> Path:
    """``table.to_csv(path, index=False, **to_csv)``, appearing under ``path`` only once complete."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, **to_csv)
    return Path(path)


def _encode_attr(value):
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    if value is None:
        return "null"
    return value


def _strings(values) -> list[str]:
    """UTF-8 string rows (``names``, ``split``) as a list of str."""
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _decode_attr(value):
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str) and value[:1] in "[{" or value == "null":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


class TensorFileWriter:
    """Write a tensor file batch by batch, atomically.

    Use as a context manager; the file appears under its final name only when the
    block exits without an exception, otherwise the partial file is removed.

    Parameters
    ----------
    path : str or Path
        Destination ``*.h5``.
    shape : tuple of int
        Full (N, C, H, W) shape of ``x``.
    kind : str
        What the rows are: ``images``, ``latents``, ``samples``, ``reconstruction``.
    attrs : dict, optional
        Further attributes (settings, normalization record, seed, config hash).
    chunk_rows : int
        Rows per HDF5 chunk; one row per chunk keeps random access cheap.
    start_from : str or Path, optional
        An HDF5 file to build on, moved (not copied) into place as the new file's start: ingest
        stages its ``physical`` maps there as it reads them, so they are written once.
    """

    def __init__(self, path, shape, kind: str, attrs: dict | None = None, chunk_rows: int = 1,
                 start_from=None):
        if len(shape) != 4:
            raise ValueError(f"tensor files hold (N, C, H, W) arrays, got shape {shape}")
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        self.kind = kind
        self.attrs = dict(attrs or {})
        self.chunk_rows = max(1, min(chunk_rows, self.shape[0] or 1))
        self._tmp: Path | None = None
        self._h5: h5py.File | None = None
        self._names = [""] * self.shape[0]
        self._written = np.zeros(self.shape[0], dtype=bool)
        self._start_from = None if start_from is None else Path(start_from)

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = _temporary_sibling(self.path)
        if self._start_from is not None:
            os.replace(self._start_from, self._tmp)
        self._h5 = h5py.File(self._tmp, "a" if self._start_from is not None else "w", rdcc_nbytes=2**20)
        self._x = self._h5.create_dataset(
            "x", shape=self.shape, dtype="float32",
            chunks=(self.chunk_rows, *self.shape[1:]) if self.shape[0] else None,
        )
        return self

    def write(self, start: int, x: np.ndarray, names) -> None:
        """Write rows ``start : start + len(x)``."""
        x = np.asarray(x, dtype=np.float32)
        stop = start + x.shape[0]
        if x.shape[1:] != self.shape[1:] or stop > self.shape[0]:
            raise ValueError(f"rows {start}:{stop} of shape {x.shape} do not fit {self.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"refusing to write non-finite values to {self.path}")
        self._x[start:stop] = x
        self._names[start:stop] = [str(n) for n in names]
        self._written[start:stop] = True

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                if not self._written.all():
                    missing = np.flatnonzero(~self._written)
                    raise RuntimeError(f"{self.path}: rows {missing[:5].tolist()}... were never written")
                self._h5.create_dataset("names", data=np.array(self._names, dtype=object), dtype=_STR)
                attrs = {"kind": self.kind, "discoverydiff_version": __version__, **self.attrs}
                for key, value in attrs.items():
                    self._h5.attrs[key] = _encode_attr(value)
            self._h5.close()
            if exc_type is None:
                os.replace(self._tmp, self.path)
        finally:
            if self._tmp is not None and self._tmp.exists():
                self._tmp.unlink()
        return False

    def create_rows(self, name: str, row_shape, dtype, attrs: dict | None = None, compress: bool = True):
        """A further per-row dataset of ``(N, *row_shape)`` to fill batch by batch (``ds[a:b] = ...``):
        chunked like ``x``, gzip-compressed (a mask of mostly zeros shrinks many times), or not
        (``compress=False``: float maps of real data gain little from gzip, which costs more
        time than the rest of writing them; measured on a 256x256x3 galaxy map: 17% smaller,
        20 ms of compression)."""
        shape = (self.shape[0], *(int(s) for s in row_shape))
        options = {"chunks": (self.chunk_rows, *shape[1:])} if self.shape[0] else {}
        if compress and self.shape[0]:
            options.update(compression="gzip", compression_opts=1, shuffle=True)
        ds = self._h5.create_dataset(name, shape=shape, dtype=dtype, **options)
        for key, value in (attrs or {}).items():
            ds.attrs[key] = _encode_attr(value)
        return ds

    def dataset(self, name: str, attrs: dict | None = None):
        """A per-row dataset already in the file (e.g. one of ``start_from``), given ``attrs``."""
        ds = self._h5[name]
        if ds.shape[:1] != self.shape[:1]:
            raise ValueError(f"dataset {name!r} has {ds.shape[0]} rows, the file {self.shape[0]}")
        for key, value in (attrs or {}).items():
            ds.attrs[key] = _encode_attr(value)
        return ds

    def add_dataset(self, name: str, data) -> None:
        """Add a further small per-row dataset in one go, e.g. ``split`` (large ones: :meth:`create_rows`)."""
        data = np.asarray(data)
        if data.dtype.kind in "USO":
            self._h5.create_dataset(name, data=data.astype(object), dtype=_STR)
        else:
            self._h5.create_dataset(name, data=data)


def write_tensor_file(path, x, names, kind: str, attrs: dict | None = None,
                      split=None) -> Path:
    """Write a whole (N, C, H, W) array as a tensor file, atomically.

    Parameters
    ----------
    path : str or Path
    x : ndarray, shape (N, C, H, W)
    names : sequence of str, length N
    kind : str
    attrs : dict, optional
    split : sequence of str, optional
        ``fewshot`` / ``heldout`` per row.
    """
    x = np.asarray(x)
    if len(names) != x.shape[0]:
        raise ValueError(f"{len(names)} names for {x.shape[0]} rows")
    with TensorFileWriter(path, x.shape, kind, attrs) as out:
        out.write(0, x, names)
        if split is not None:
            if len(split) != x.shape[0]:
                raise ValueError(f"{len(split)} split labels for {x.shape[0]} rows")
            out.add_dataset("split", np.array(split, dtype=object))
    return Path(path)


@dataclass
class TensorSet:
    """The contents of a tensor file held in memory."""

    x: np.ndarray
    names: list[str]
    attrs: dict = field(default_factory=dict)
    split: np.ndarray | None = None

    def subset(self, which: str) -> TensorSet:
        """Rows of one split (``fewshot``, ``validation`` or ``test``)."""
        if self.split is None:
            raise ValueError("this tensor set has no split")
        keep = self.split == which
        return TensorSet(self.x[keep], [n for n, k in zip(self.names, keep) if k],
                         dict(self.attrs), self.split[keep])


def _open_checked(path) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file does not exist")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(path, f"not a readable HDF5 file ({exc})") from None
    if "x" not in h5 or "names" not in h5:
        h5.close()
        raise InputError(path, "not a discoverydiff tensor file (datasets 'x' and 'names' are required)")
    if h5["x"].ndim != 4:
        shape = h5["x"].shape
        h5.close()
        raise InputError(path, f"dataset 'x' must be (N, C, H, W), found shape {shape}")
    return h5


def read_attrs(path) -> dict:
    """The attributes of a tensor file, JSON values decoded."""
    with _open_checked(path) as h5:
        return {k: _decode_attr(v) for k, v in h5.attrs.items()}


def read_tensor_file(path, split: str | None = None) -> TensorSet:
    """Read a whole tensor file (optionally one split of it) into memory."""
    with _open_checked(path) as h5:
        attrs = {k: _decode_attr(v) for k, v in h5.attrs.items()}
        names = _strings(h5["names"][()])
        labels = _labels(h5) if "split" in h5 else None
        try:
            x = h5["x"][()]
        except OSError as exc:
            raise InputError(path, f"dataset 'x' is unreadable, the file may be truncated ({exc})") from None
    out = TensorSet(x, names, attrs, labels)
    if not np.isfinite(out.x).all():
        raise InputError(path, "dataset 'x' contains NaN or inf")
    if split is not None:
        if labels is None:
            raise InputError(path, f"asked for split {split!r} but the file has no 'split' dataset")
        out = out.subset(split)
    return out


def split_counts(path) -> dict[str, int]:
    """Rows of each split of a tensor file (``{}`` without a ``split`` dataset)."""
    with _open_checked(path) as h5:
        if "split" not in h5:
            return {}
        labels, counts = np.unique(_labels(h5), return_counts=True)
    return {str(label): int(count) for label, count in zip(labels, counts)}


def has_dataset(path, name: str) -> bool:
    """Whether a tensor file holds the per-row dataset ``name`` (e.g. ``physical``, ``clipped``)."""
    with _open_checked(path) as h5:
        return name in h5


def read_rows(path, name, split: str | None = None):
    """Per-row datasets of a tensor file (``physical``, ``clipped``, ``names``...), optionally one
    split's rows, from one open of the file. ``name`` is one dataset name (returns its array) or a
    tuple of names (returns a tuple); UTF-8 string rows come back as a list of str."""
    names = (name,) if isinstance(name, str) else tuple(name)
    with _open_checked(path) as h5:
        _check_row_datasets(path, h5, names)
        rows = slice(None) if split is None else _selected_rows(path, h5, split)
        out = []
        for item in names:
            try:
                values = h5[item][rows]
            except OSError as exc:
                raise InputError(path, f"dataset {item!r} is unreadable, the file may be truncated ({exc})") from None
            if values.dtype.kind in "OS":
                values = _strings(values)
            out.append(values)
    return out[0] if isinstance(name, str) else tuple(out)


def shard_range(n: int, index: int, count: int, align: int = 1) -> tuple[int, int]:
    """Rows ``start:stop`` of shard ``index`` (0-based) of ``count`` over ``n`` rows.

    Shards are contiguous, in order, and made of whole blocks of ``align`` rows (the batch
    size), spread as evenly as the blocks allow; a shard may be empty when there are fewer
    blocks than shards. With ``align`` equal to the batch size, every batch of a sharded run
    holds the same rows as the batch of the unsharded run, so results are bitwise equal.
    """
    if count < 1 or not 0 <= index < count or align < 1 or n < 0:
        raise ValueError(f"need 0 <= index < count and align >= 1, got index={index}, count={count}, align={align}")
    blocks = -(-n // align)
    edges = [blocks * k // count for k in range(count + 1)]
    return min(edges[index] * align, n), min(edges[index + 1] * align, n)


def gather_tensor_files(paths, out_path) -> Path:
    """Concatenate shard tensor files, in order, into one tensor file (atomically).

    Every shard must have the same attributes and row shape; the result has those
    attributes, the rows of all shards and their ``split`` labels when they have them,
    so it is the file a one-shard run writes.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no shard files to gather")
    attrs = read_attrs(paths[0])
    shapes, has_split = [], []
    for path in paths:
        with _open_checked(path) as h5:
            shapes.append(h5["x"].shape)
            has_split.append("split" in h5)
        if read_attrs(path) != attrs:
            raise InputError(path, f"attributes differ from those of {paths[0]}; shards of different runs?")
        if shapes[-1][1:] != shapes[0][1:]:
            raise InputError(path, f"rows of shape {shapes[-1][1:]} do not match {shapes[0][1:]} of {paths[0]}")
    if len(set(has_split)) > 1:
        raise InputError(paths[has_split.index(not has_split[0])], "split labels in some shards only")
    total = sum(s[0] for s in shapes)
    kind = attrs.pop("kind", "tensors")
    attrs.pop("discoverydiff_version", None)
    splits = []
    with TensorFileWriter(out_path, (total, *shapes[0][1:]), kind, attrs) as out:
        offset = 0
        for path in paths:
            shard = read_tensor_file(path)
            if len(shard.names):
                out.write(offset, shard.x, shard.names)
            offset += len(shard.names)
            if shard.split is not None:
                splits.append(shard.split)
        if has_split[0]:
            out.add_dataset("split", np.concatenate(splits).astype(object))
    return Path(out_path)


def _labels(h5) -> np.ndarray:
    return np.array(_strings(h5["split"][()]))


def _selected_rows(path, h5, split: str | None) -> np.ndarray:
    selected = np.arange(h5["x"].shape[0])
    if split is None:
        return selected
    if "split" not in h5:
        raise InputError(path, f"asked for split {split!r} but the file has no 'split' dataset")
    return selected[_labels(h5) == split]


def _check_row_datasets(path, h5, datasets) -> None:
    for item in datasets:
        if item not in h5:
            raise InputError(path, f"has no dataset {item!r}; it was written by an older version, run its "
                                   "ingest again")
        if h5[item].shape[:1] != h5["x"].shape[:1]:
            raise InputError(path, f"dataset {item!r} has {h5[item].shape[0]} rows, 'x' has {h5['x'].shape[0]}")


class RowIndex(NamedTuple):
    """What a reader needs to know of a tensor file before reading rows."""

    rows: np.ndarray  # file rows of the split
    names: list[str]
    x_shape: tuple  # (N, C, H, W) of the whole file
    datasets: frozenset


def row_index(path, split: str | None = None) -> RowIndex:
    """File rows of a split (all rows for None), their names, the shape of ``x`` and the file's
    datasets, from one open and without reading any per-row data."""
    with _open_checked(path) as h5:
        selected = _selected_rows(path, h5, split)
        names = _strings(h5["names"][()])
        return RowIndex(selected, [names[i] for i in selected], tuple(h5["x"].shape), frozenset(h5))


def read_file_rows(path, datasets, rows) -> tuple[np.ndarray, ...]:
    """Per-row datasets (e.g. ``("physical", "clipped")``) at the file rows ``rows`` (increasing),
    reading only those rows; an unreadable (truncated) dataset is an :class:`InputError`."""
    with _open_checked(path) as h5:
        _check_row_datasets(path, h5, datasets)
        out = []
        for item in datasets:
            try:
                out.append(_read_selected(h5[item], np.asarray(rows, dtype=np.int64)))
            except OSError as exc:
                raise InputError(path, f"dataset {item!r} is unreadable, the file may be truncated ({exc})") from None
    return tuple(out)


def iter_batches(path, batch_size: int, split: str | None = None,
                 rows: tuple[int, int] | None = None) -> Iterator[tuple[int, np.ndarray, list[str]]]:
    """Stream (offset, x, names) batches without loading the whole file.

    ``offset`` counts rows of the selected split (and of the row range ``rows`` =
    (start, stop) within it, e.g. a :func:`shard_range`), so batches can be written
    straight into a :class:`TensorFileWriter` of that size.
    """
    with _open_checked(path) as h5:
        names = _strings(h5["names"][()])
        selected = _selected_rows(path, h5, split)
        if rows is not None:
            selected = selected[rows[0]:rows[1]]
        for offset in range(0, len(selected), batch_size):
            sel = selected[offset:offset + batch_size]
            yield offset, _read_selected(h5["x"], sel), [names[i] for i in sel]


def _read_selected(dataset, sel: np.ndarray) -> np.ndarray:
    """Rows ``sel`` (increasing) of an HDF5 dataset, reading only those rows.

    A contiguous run is one slice; anything else is an h5py fancy-index read (a point
    selection: the rows asked for, not the span between the first and the last).
    """
    if not len(sel):
        return dataset[0:0]
    if sel[-1] - sel[0] + 1 == len(sel):
        return dataset[int(sel[0]):int(sel[-1]) + 1]
    return dataset[np.asarray(sel, dtype=np.int64)]
