"""Sets of maps read block by block: what the statistics stream over.

A set of maps in physical units (few-shot or held-out targets, samples of a model) is a
*source*: its size, its row names, and blocks of rows with their clip masks. The
statistics never hold more than one block of a set: the memory of the stats rule depends
on the block size, not on how many maps a set has.

- :class:`ArrayMaps`: maps already in memory (the functions' array API, notebooks, tests);
- :class:`RealMaps`: one split (few-shot, validation, test) of a dataset's ``tensors.h5``, the
  unclipped ``physical`` maps ingest kept and its ``clipped`` mask;
- :class:`SampleMaps`: a tensor file of samples (``x`` in [-1, 1]) mapped to physical units
  through the dataset's normalization record, with the mask of values at a clip bound.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)

#: Bytes of float64 physical maps per block (the stats rule's working set is a few times this).
BLOCK_BYTES = 64 * 2**20


def block_rows(map_shape, block_bytes: int = BLOCK_BYTES) -> int:
    """Maps per block: as many float64 maps of ``map_shape`` as fit in ``block_bytes``, at least 1."""
    return max(1, int(block_bytes // (8 * int(np.prod(map_shape)))))


class ArrayMaps:
    """A set held in memory: ``data`` (N, ...), optional clip ``mask`` (N, ...) and row ``names``."""

    def __init__(self, data, mask=None, names=None):
        self.data = np.asarray(data)
        self.mask = None if mask is None else np.asarray(mask, dtype=bool)
        if self.mask is not None and len(self.mask) != len(self.data):
            raise ValueError(f"the clip mask has {len(self.mask)} rows, the data {len(self.data)}")
        self.names = list(names) if names is not None else None
        self.map_shape = self.data.shape[1:]

    def __len__(self) -> int:
        return len(self.data)

    def rows(self, index) -> tuple[np.ndarray, np.ndarray | None]:
        index = np.asarray(index, dtype=np.int64)
        return (np.asarray(self.data[index], dtype=np.float64),
                None if self.mask is None else self.mask[index])

    def blocks(self, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        size = block_rows(self.map_shape, block_bytes)
        for start in range(0, len(self), size):
            yield start, *self.rows(np.arange(start, min(start + size, len(self))))

    def array(self) -> np.ndarray:
        return np.asarray(self.data, dtype=np.float64)


class _FileMaps:
    """Rows ``self.file_rows`` of a tensor file, read a block at a time."""

    path = None
    file_rows: np.ndarray
    map_shape: tuple

    def __len__(self) -> int:
        return len(self.file_rows)

    def _read(self, file_rows) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def rows(self, index) -> tuple[np.ndarray, np.ndarray | None]:
        index = np.asarray(index, dtype=np.int64)
        order = np.argsort(index, kind="stable")  # the file is read in increasing row order
        values, mask = self._read(self.file_rows[index[order]])
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return values[back], None if mask is None else mask[back]

    def blocks(self, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        size = block_rows(self.map_shape, block_bytes)
        for start in range(0, len(self), size):
            yield start, *self._read(self.file_rows[start:start + size])

    def array(self) -> np.ndarray:
        return np.concatenate([values for _, values, _ in self.blocks()]) if len(self) else \
            np.empty((0, *self.map_shape))


class RealMaps(_FileMaps):
    """The real maps of one split of ``tensors.h5`` in physical units, unclipped (tails beyond the
    record's lo/hi included), with ingest's clip mask (any channel, for replicated fields).

    A file from before ingest kept ``physical`` falls back to the clipped ``record.to_physical(x)``,
    with a warning."""

    def __init__(self, tensors_path, split: str | None, record):
        from ..store import row_index

        self.path, self.record = tensors_path, record
        index = row_index(tensors_path, split)
        self.file_rows, self.names = index.rows, index.names
        self.has_physical = "physical" in index.datasets
        if not self.has_physical:
            log.warning("%s has no unclipped 'physical' maps (an older ingest); using the clipped ones, so the "
                        "tails beyond the record's lo/hi are missing: run ingest again", tensors_path)
        self.map_shape = (record.source_channels, *index.x_shape[2:])

    def _read(self, file_rows):
        from ..store import read_file_rows

        if not self.has_physical:
            (x,) = read_file_rows(self.path, ("x",), file_rows)
            return self.record.to_physical(x), self.record.clip_mask(x)
        values, mask = read_file_rows(self.path, ("physical", "clipped"), file_rows)
        values, mask = values.astype(np.float64), mask.astype(bool)
        if not np.isfinite(values).all():
            raise InputError(self.path, "dataset 'physical' contains NaN or inf")
        if self.record.channel_mode == "replicate":
            mask = mask.any(axis=1, keepdims=True)
        return values, mask


class SampleMaps(_FileMaps):
    """A tensor file of samples (``x`` in [-1, 1]) in physical units through ``record``, with the
    mask of values at a clip bound (:meth:`NormalizationRecord.clip_mask`); its first ``limit`` rows
    when given (every generated set is judged at the same size)."""

    def __init__(self, path, record, tensors_path=None, limit: int | None = None):
        from ..store import row_index

        self.path, self.record = path, record
        index = row_index(path)  # checks it is a tensor file
        self.file_rows, self.names = index.rows[:limit], index.names[:limit]
        channels, *size = index.x_shape[1:]
        if channels != record.model_channels:
            raise InputError(path, f"has {channels} channel(s); {tensors_path or 'the dataset'}'s record maps "
                                   f"{record.model_channels}")
        self.map_shape = (record.source_channels, *size)

    def _read(self, file_rows):
        from ..store import read_file_rows

        (x,) = read_file_rows(self.path, ("x",), file_rows)
        if not np.isfinite(x).all():
            raise InputError(self.path, "dataset 'x' contains NaN or inf")
        return self.record.to_physical(x), self.record.clip_mask(x)


def as_source(data, mask=None, names=None):
    """A source as it is, anything else as :class:`ArrayMaps`."""
    if isinstance(data, (ArrayMaps, _FileMaps)):
        return data
    return ArrayMaps(data, mask, names)
