"""Ingest: raw files of one dataset -> one tensor file in [-1, 1] plus its record.

Steps, in order, for every matched file: read (``io``), convert to the dataset's units,
reject NaN/inf/BLANK pixels and values the transform cannot take, centre-crop to a square,
resample to the model's resolution, and stage the map (float32) in a file beside the
output; then draw the seeded few-shot / held-out split, fit the normalization on the few-shot
maps (``normalize``; the held-out ones stay unseen) and write ``tensors.h5`` block by block
and ``rejected.csv``, atomically (``store``). Memory does not grow with the number of files:
one file, one block of maps and the few-shot maps are held at a time. Beside the normalized
``x``, tensors.h5 keeps the resampled maps in physical units (``physical``, unclipped, so
statistics see the real tails; ``x`` is exactly their normalization) and the mask of clipped
pixels (``clipped``). With ``on_bad_input: fail`` the first bad file stops the run before
anything is written.
"""

from __future__ import annotations

import csv
import functools
import glob
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .errors import ConfigError, InputError
from .io import RawField, iter_raw_fields
from .normalize import check_domain, fit_normalization
from .store import SPLIT_FEWSHOT, SPLIT_TEST, SPLIT_UNUSED, SPLIT_VALIDATION, SPLITS, TensorFileWriter, atomic_path
from .units import parse_unit, unit_string

log = logging.getLogger(__name__)

RESAMPLE_FILTERS = ("box", "lanczos", "bilinear", "bicubic")
LUPTON_MAX_CLIPPED_SHARE = 0.05
#: Bytes of maps (float32) held at a time while ingest stages and writes them.
STAGING_BLOCK_BYTES = 8 * 2**20


@dataclass
class DatasetSpec:
    """One dataset of the config (``datasets: NAME: ...``), defaults as in config/schema.yaml."""

    inputs: list
    units: str | list | None = None
    crop_fraction: float = 1.0
    crop_pixels: int | None = None
    resample: str = "box"
    normalize: dict = field(default_factory=lambda: {"transform": "log10"})
    channels: str = "identity"
    n_fewshot: int = 16
    n_validation: int = 16
    n_test: int | None = None
    on_bad_input: str = "fail"
    catalogue: dict | None = None

    @classmethod
    def from_config(cls, name: str, cfg: dict) -> DatasetSpec:
        known = set(cls.__dataclass_fields__)
        crop = cfg.get("crop") or {}
        args = {k: v for k, v in cfg.items() if k in known}
        if "fraction" in crop and crop["fraction"] is not None:
            args["crop_fraction"] = crop["fraction"]
        if crop.get("pixels") is not None:
            args["crop_pixels"] = crop["pixels"]
        spec = cls(**args)
        spec.validate(name)
        return spec

    def validate(self, name: str) -> None:
        where = f"datasets.{name}"
        if not self.inputs:
            raise ConfigError(f"{where}.inputs is empty: name at least one file pattern")
        if self.resample not in RESAMPLE_FILTERS:
            raise ConfigError(f"{where}.resample must be one of {RESAMPLE_FILTERS}, got {self.resample!r}")
        if not 0 < self.crop_fraction <= 1:
            raise ConfigError(f"{where}.crop.fraction must be in (0, 1], got {self.crop_fraction}")
        if self.on_bad_input not in ("fail", "skip"):
            raise ConfigError(f"{where}.on_bad_input must be 'fail' or 'skip', got {self.on_bad_input!r}")
        if self.n_fewshot < 1:
            raise ConfigError(f"{where}.n_fewshot must be at least 1, got {self.n_fewshot}")
        if self.n_validation < 0:
            raise ConfigError(f"{where}.n_validation must be at least 0, got {self.n_validation}")
        if self.n_test is not None and self.n_test < 1:
            raise ConfigError(f"{where}.n_test must be at least 1 (or null: every map left), got {self.n_test}")

    def draw_split(self, name: str, n: int, seed: int) -> np.ndarray:
        """The split label of each of ``n`` maps, drawn by ``seed``: ``n_fewshot`` few-shot maps, then
        ``n_validation`` validation maps, then ``n_test`` test maps (default: all the rest), the rest
        ``unused``. The few-shot maps are the first ``n_fewshot`` of one seeded permutation, so they do
        not depend on the other sizes."""
        where = f"datasets.{name}"
        n_test = n - self.n_fewshot - self.n_validation if self.n_test is None else self.n_test
        if n_test < 1 or self.n_fewshot + self.n_validation + n_test > n:
            raise ConfigError(f"{where}: {n} map(s) were ingested, too few for n_fewshot = {self.n_fewshot}, "
                              f"n_validation = {self.n_validation} and n_test = {self.n_test or 'the rest'} "
                              "(at least one test map); lower them or add maps")
        order = np.random.default_rng(seed).permutation(n)
        split = np.full(n, SPLIT_UNUSED, dtype=object)
        bounds = np.cumsum([0, self.n_fewshot, self.n_validation, n_test])
        for label, lo, hi in zip((SPLIT_FEWSHOT, SPLIT_VALIDATION, SPLIT_TEST), bounds[:-1], bounds[1:]):
            split[order[lo:hi]] = label
        return split


def match_inputs(spec: DatasetSpec, base_dir: str | Path = ".") -> list[tuple[Path, dict]]:
    """Expand every input pattern (sorted, so the order never depends on the filesystem)."""
    matched = []
    for entry in spec.inputs:
        pattern = entry["pattern"]
        full = pattern if os.path.isabs(pattern) else str(Path(base_dir) / pattern)
        files = sorted(glob.glob(full, recursive=True))
        if not files:
            raise InputError(pattern, "the file pattern matched no files")
        matched.extend((Path(f), entry) for f in files)
    return matched


def select_by_catalogue(files: list[tuple[Path, dict]], catalogue: dict,
                        base_dir: str | Path = ".") -> list[tuple[Path, dict]]:
    """Keep the cutouts whose id (file stem) passes the catalogue query.

    Parameters
    ----------
    files : list of (path, input spec)
    catalogue : dict
        ``path`` (CSV, e.g. the Galaxy Zoo 2 Kaggle ``training_solutions_rev1.csv``),
        ``id_column`` (default ``GalaxyID``) and ``query``, a pandas query over its
        columns, e.g. ```Class1.1` > 0.8`` for smooth galaxies (back-quote names with dots).
    base_dir : str or Path
        A relative catalogue ``path`` is resolved from here, as the input patterns are.
    """
    import pandas as pd

    path = catalogue["path"]
    path = path if os.path.isabs(path) else str(Path(base_dir) / path)
    id_column = catalogue.get("id_column", "GalaxyID")
    try:
        table = pd.read_csv(path, dtype={id_column: str})
    except FileNotFoundError:
        raise InputError(path, "catalogue file does not exist") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(path, f"is not a readable CSV catalogue ({exc})") from None
    if id_column not in table.columns:
        raise InputError(path, f"has no id column {id_column!r}; its columns are {list(table.columns)[:12]}")
    query = catalogue.get("query")
    if query:
        try:
            table = table.query(query)
        except Exception as exc:  # pandas raises many types for a bad expression
            raise ConfigError(f"catalogue query {query!r} on {path} failed: {exc}") from None
    selected = set(table[id_column].astype(str).str.strip())
    kept = [(f, e) for f, e in files if f.stem in selected]
    log.info("catalogue %s: query %r selects %d ids; %d of %d cutouts match",
             path, query, len(selected), len(kept), len(files))
    if not kept:
        raise InputError(path, f"no cutout file stem matches a selected {id_column} (query {query!r})")
    return kept


def center_crop(data: np.ndarray, fraction: float, pixels: int | None, source: str) -> np.ndarray:
    """Square centre crop of a (C, H, W) map: ``pixels`` wide, else ``fraction`` of min(H, W)."""
    _, h, w = data.shape
    side = pixels if pixels is not None else max(1, int(round(fraction * min(h, w))))
    if side > min(h, w):
        raise InputError(source, f"image is {h}x{w} pixels, smaller than the crop of {side} pixels")
    top, left = (h - side) // 2, (w - side) // 2
    return data[:, top:top + side, left:left + side]


def _kernel(method: str, x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    if method == "bilinear":
        return np.clip(1.0 - ax, 0.0, None)
    if method == "bicubic":  # Keys (1981) cubic convolution, a = -0.5, as in Pillow
        a = -0.5
        return np.where(ax < 1, (a + 2) * ax**3 - (a + 3) * ax**2 + 1,
                        np.where(ax < 2, a * ax**3 - 5 * a * ax**2 + 8 * a * ax - 4 * a, 0.0))
    if method == "lanczos":  # Lanczos-3
        return np.where(ax < 3, np.sinc(x) * np.sinc(x / 3.0), 0.0)
    raise ConfigError(f"resample must be one of {RESAMPLE_FILTERS}, got {method!r}")


@functools.lru_cache(maxsize=64)
def resample_matrix(n_in: int, n_out: int, method: str) -> np.ndarray:
    """(n_out, n_in) weights of a 1-D anti-aliased resampling; rows sum to 1.

    ``box`` uses exact pixel-area overlaps, so it conserves the mean and keeps positive
    fields positive for any factor. The other kernels are stretched by the downscale
    factor, which anti-aliases, and renormalized where they run past an edge; this is
    Pillow's ``Image.resize`` scheme, done in float64. Cached (read-only arrays): a survey's
    cutouts share a few shapes, and the sinc weights cost as much as the resampling itself.
    """
    scale = n_in / n_out
    if method == "box":
        lo = np.arange(n_out)[:, None] * scale
        j = np.arange(n_in)[None, :]
        weights = np.clip(np.minimum(lo + scale, j + 1) - np.maximum(lo, j), 0.0, None)
    else:
        stretch = max(scale, 1.0)
        centre = (np.arange(n_out)[:, None] + 0.5) * scale
        j = np.arange(n_in)[None, :] + 0.5
        weights = _kernel(method, (j - centre) / stretch)
    weights = weights / weights.sum(axis=1, keepdims=True)
    weights.flags.writeable = False
    return weights


def resample(data: np.ndarray, size: int, method: str) -> np.ndarray:
    """Resample a (C, H, W) map to (C, size, size) in float64 with separable weights.

    See :func:`resample_matrix` for the filters; ``box`` (pixel-area average) suits
    physical fields, ``lanczos`` photographs.
    """
    if data.shape[1:] == (size, size):
        return data.copy()
    c, h, w = data.shape
    rows, cols = _sparse_weights(h, size, method), _sparse_weights(w, size, method)
    # rows pass on (H, C W), then the columns pass on (size C, W): two sparse-dense products
    tall = rows @ np.asarray(data, dtype=np.float64).transpose(1, 0, 2).reshape(h, c * w)
    out = (cols @ tall.reshape(size * c, w).T).T
    return out.reshape(size, c, size).transpose(1, 0, 2)  # a view: staging copies it to float32 anyway


@functools.lru_cache(maxsize=64)
def _sparse_weights(n_in: int, n_out: int, method: str):
    """:func:`resample_matrix` as a CSR matrix. The kernels are zero past a few (stretched) pixels,
    so each output pixel reads about 6 inputs (Lanczos-3 upsampling) rather than all n_in: at
    207 -> 256 px a map resamples in 0.4 ms instead of 7 ms with dense products (measured),
    which made the weights' multiplication the largest cost of a 256 px ingest."""
    from scipy.sparse import csr_matrix

    return csr_matrix(resample_matrix(n_in, n_out, method))


def _configured_units(units, name: str) -> list | None:
    if units is None:
        return None
    units = [units] if isinstance(units, str) else list(units)
    return [unit_string(parse_unit(t, f"datasets.{name}.units")) for t in units]


class _UnitReader:
    """A file's unit per channel, with the dataset's ``units:`` overriding what astropy cannot parse.

    An unparsable unit (e.g. HST's ``BUNIT = 'COUNTS'``) is an error that says how to
    override it, unless the dataset names its units: then the values are taken to be in
    those units, with a warning naming the first file of each such unit string and, at the
    end, how many files it applied to.
    """

    def __init__(self, dataset: str, configured: list | None):
        self.dataset, self.configured = dataset, configured
        self.overridden: dict[str, list] = {}

    def parse(self, text: str, source) -> object | None:
        """The astropy unit of ``text``, or None when it is unparsable and overridden."""
        try:
            return parse_unit(text, source)
        except InputError as exc:
            if self.configured is None:
                raise InputError(source, f"{exc.problem}; if its values are in a unit astropy knows, "
                                         f"give it as datasets.{self.dataset}.units (e.g. units: count for "
                                         "'COUNTS'), which overrides the file's unit") from None
            if text not in self.overridden:
                log.warning("%s: unit %r is not one astropy understands; taking its values to be in %s as "
                            "datasets.%s.units says", source, text, self.configured, self.dataset)
            self.overridden.setdefault(text, []).append(str(source))
            return None

    def summary(self) -> None:
        for text, files in self.overridden.items():
            log.warning("%s: the file unit %r was overridden by datasets.%s.units in %d file(s), the first %s",
                        self.dataset, text, self.dataset, len(files), files[0])


def _convert_units(raw: RawField, target: list, reader: _UnitReader) -> np.ndarray:
    data = raw.data
    factors = []
    for c, (have, want) in enumerate(zip(raw.units, target)):
        if not have or not want or have == want:
            factors.append(1.0)
            continue
        have_u, want_u = reader.parse(have, raw.name), parse_unit(want, "datasets.units")
        if have_u is None:  # overridden: the values are in the configured unit
            factors.append(1.0)
            continue
        try:
            factors.append(float(have_u.to(want_u)))
        except Exception:
            raise InputError(raw.name, f"channel {c} is in {have!r}, which does not convert to the "
                                       f"dataset's unit {want!r}") from None
    if all(f == 1.0 for f in factors):  # nothing to convert: skip a pass over the map
        return data
    return data * np.asarray(factors)[:, None, None]


@dataclass
class IngestResult:
    """What :func:`ingest_dataset` produced, for logs and tests."""

    n_images: int
    n_rejected: int
    rejected: list
    record: object
    tensors_path: Path
    rejected_path: Path


def _write_rejected(path: Path, rejected: list) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "reason"])
        writer.writerows(rejected)


def _reject(spec: DatasetSpec, rejected: list, exc: InputError) -> None:
    """``on_bad_input: fail`` stops at the first bad map; ``skip`` lists it in rejected.csv."""
    if spec.on_bad_input == "fail":
        raise exc
    log.warning("skipping %s", exc)
    rejected.append((exc.path, exc.problem))


def _prepare(raw: RawField, spec: DatasetSpec, resolution: int, transform: str, convert=None) -> np.ndarray:
    """Check a map's values, convert its units (``convert``), crop and resample it, check again."""
    problem = check_domain(raw.data, transform)
    if problem:
        raise InputError(raw.name, problem)
    data = raw.data if convert is None else convert(raw)
    data = center_crop(data, spec.crop_fraction, spec.crop_pixels, raw.name)
    data = resample(data, resolution, spec.resample)
    problem = check_domain(data, transform)
    if problem:
        raise InputError(raw.name, f"after resampling with {spec.resample!r}: {problem}; use resample: box")
    return data


def _read_file(path: Path, entry: dict, spec: DatasetSpec, resolution: int, transform: str) -> list:
    """A cutout or a FITS file read whole, on a worker thread: [(raw, prepared map or None)].

    Maps whose file states no unit need no conversion (whatever the dataset's unit), so they
    are checked, cropped and resampled here too; the others are converted on the main thread,
    which follows the dataset's unit from file to file. 8-bit images are read as uint8 and
    cropped before the conversion to float64 (a fifth of a Galaxy Zoo cutout), the same values.
    """
    out = []
    for raw in iter_raw_fields(path, entry, image_dtype=np.uint8):
        needs_units = any(raw.units)
        if raw.data.dtype == np.uint8 and needs_units:
            raw.data = raw.data.astype(np.float64)
        try:
            data = None if needs_units else _prepare(raw, spec, resolution, transform)
        except InputError as exc:
            out.append((raw, exc))
            continue
        if raw.data.dtype == np.uint8:
            raw.data = raw.data.astype(np.float64)  # the float64 map callers of RawField expect
        out.append((raw, data))
    return out


def _stream(path: Path, entry: dict):
    for raw in iter_raw_fields(path, entry):
        yield raw, None


def _read_ahead(files: list, spec: DatasetSpec, resolution: int, transform: str, workers: int):
    """(path, iterator of (raw, prepared map or None)) for every file, in order.

    Cutouts and FITS files are read (decoded, and where possible prepared) ``workers`` at a time
    on a thread pool, at most ``2 x workers`` files ahead of the main thread: Pillow's JPEG
    decoder and numpy's and scipy's loops release the GIL, so decoding overlaps the staging.
    HDF5 stacks stream block by block on the main thread.
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    def failed(exc):
        raise exc
        yield  # a generator that raises when first asked for a map

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ingest-read")
    pending: deque = deque()
    queue = iter(files)

    def submit():
        for path, entry in queue:
            if entry.get("format") == "hdf5":
                pending.append((path, None, entry))
            else:
                pending.append((path, pool.submit(_read_file, path, entry, spec, resolution, transform), entry))
            if len(pending) >= 2 * max(1, workers):
                return

    try:
        submit()
        while pending:
            path, future, entry = pending.popleft()
            submit()
            if future is None:
                yield path, _stream(path, entry)
                continue
            try:
                items = future.result()
            except InputError as exc:
                yield path, failed(exc)
                continue
            yield path, iter(items)
    finally:  # also when the caller stops early (a bad file under on_bad_input: fail)
        pool.shutdown(wait=True, cancel_futures=True)


def default_gaussianize(setting, kind: str, transform: str, fixed_range: bool = False):
    """``normalize.gaussianize`` as ingest applies it: the config's value, or with none (null) on for
    fields and off for galaxies (and never with the lupton stretch). Decoded mixtures of targets pull
    a field's one-point distribution towards its middle; in normal scores they keep it: on the
    log-normal fields of benchmarks/outside_data.py, against their test maps, gaussianizing moved the
    discovered set from farther than the fine-tuned baseline beyond the interval on log10 skewness
    (closer on 2 of 7 field statistics) to no statistic farther and 5 of 7 closer. A range given in
    transformed values (``lo``/``hi``, ``fixed_range``) keeps it off: gaussianized, lo/hi would be
    normal scores."""
    if setting is not None:
        return setting
    return kind == "field" and transform != "lupton" and not fixed_range


def ingest_dataset(name: str, cfg: dict, tensors_path, rejected_path, resolution: int,
                   model_channels: int = 3, seed: int = 0, base_dir=".",
                   provenance: dict | None = None, workers: int | None = None) -> IngestResult:
    """Ingest one dataset into ``tensors_path`` (and ``rejected_path``).

    Parameters
    ----------
    name : str
        Dataset name (the ``{dataset}`` wildcard).
    cfg : dict
        Its config section (see config/schema.yaml, ``datasets``).
    tensors_path, rejected_path : str or Path
        Outputs: the tensor file and the (file, reason) CSV of skipped inputs.
    resolution : int
        Side of the square maps the model takes.
    model_channels : int
        Channels of the model (3 for the RGB models of the paper).
    seed : int
        Seeds the few-shot / validation / test split (:meth:`DatasetSpec.draw_split`).
    base_dir : str or Path
        Relative input patterns are resolved from here.
    provenance : dict, optional
        Extra attributes for the tensor file (``config_sha256``...).
    workers : int, optional
        Threads that read and decode files ahead of the staging (default: the CPUs this process
        may use, at most 8; the rule passes its ``threads``).
    """
    spec = DatasetSpec.from_config(name, cfg)
    if workers is None:
        workers = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    norm_cfg = dict(spec.normalize)
    transform = norm_cfg.get("transform", "log10")
    files = match_inputs(spec, base_dir)
    if spec.catalogue:
        files = select_by_catalogue(files, spec.catalogue, base_dir)

    from tqdm.auto import tqdm

    tensors_path, rejected_path = Path(tensors_path), Path(rejected_path)
    staging = _Staging(tensors_path.with_name(f".{tensors_path.name}.staging.h5"))
    names, rejected = [], []
    wcs = _WcsTracker(name)
    # The dataset's unit per channel: from config, else the first accepted file that
    # states one; files that state none are taken to be in it. Fixed only by files
    # that pass every check, so a rejected file cannot set it.
    target_units = _configured_units(spec.units, name)
    unit_reader = _UnitReader(name, target_units)
    channel_names, source_shapes = None, set()
    readers = _read_ahead(files, spec, resolution, transform, workers)
    try:
        for _path, prepared in tqdm(readers, total=len(files), desc=f"ingest {name}", unit="file"):
            while True:
                try:  # the next map of the file (a stack streams block by block)
                    raw, data = next(prepared, (None, None))
                except InputError as exc:  # the file, or the rest of a stack, cannot be read
                    _reject(spec, rejected, exc)
                    break
                if raw is None:
                    break
                try:
                    n_channels = raw.data.shape[0]
                    if channel_names is not None and n_channels != len(channel_names):
                        raise InputError(raw.name, f"has {n_channels} channel(s); the dataset's first "
                                                   f"file had {len(channel_names)}")
                    if target_units is not None and len(target_units) == 1 and n_channels > 1:
                        target_units = target_units * n_channels
                    if target_units is not None and len(target_units) != n_channels:
                        raise ConfigError(f"datasets.{name}.units names {len(target_units)} unit(s) "
                                          f"for {n_channels} channel(s)")
                    units = [t if t else unit_string(unit_reader.parse(have, raw.name))
                             for t, have in zip(target_units or [None] * n_channels, raw.units)]
                    shape = tuple(raw.data.shape[1:])
                    if isinstance(data, InputError):  # found when it was prepared ahead
                        raise data
                    if data is None:  # not prepared ahead: the file states units, converted here
                        convert = functools.partial(_convert_units, target=units, reader=unit_reader)
                        data = _prepare(raw, spec, resolution, transform, convert)
                    target_units = units
                    channel_names = channel_names or raw.channel_names
                    source_shapes.add(shape)
                    staging.append(data)
                    names.append(raw.name)
                    wcs.add(raw.header, raw.name)
                except InputError as exc:  # this map; a stack's other maps still count
                    _reject(spec, rejected, exc)
        staging.flush()
        unit_reader.summary()
        n = len(names)
        if not n:
            raise InputError(spec.inputs[0]["pattern"], f"every one of {len(files)} file(s) was rejected")
        split = spec.draw_split(name, n, seed)
        fewshot = split == SPLIT_FEWSHOT
        sizes = {label: int((split == label).sum()) for label in SPLITS}
        geometry = {
            "crop": "center-square", "crop_fraction": spec.crop_fraction, "crop_pixels": spec.crop_pixels,
            "resample": spec.resample, "resolution": resolution, "source_shapes": sorted(source_shapes),
        }
        params = {}
        lup = dict(norm_cfg.get("lupton") or {})
        if transform == "asinh":
            params["softening"] = norm_cfg.get("softening")
        if transform == "lupton":
            params = {"Q": float(lup.get("Q", 8.0)), "stretch": float(lup.get("stretch", 0.5)),
                      "minimum": [float(m) for m in lup.get("minimum", [0.0, 0.0, 0.0])],
                      "band_scales": [float(s) for s in lup.get("band_scales", [1.0, 1.0, 1.0])]}
            if staging.row_shape[0] != 3:
                raise ConfigError(f"datasets.{name}: the lupton transform needs 3 bands, got {staging.row_shape[0]}")
        # Fitted on the few-shot maps alone (exact percentiles; memory grows with n_fewshot, not with the
        # dataset), and its clipped shares are theirs: the record travels into every later file, which must
        # not depend on the validation or test maps. The other splits' shares are counted as they are written.
        gaussianize = default_gaussianize(norm_cfg.get("gaussianize"), cfg.get("kind", "field"), transform,
                                          norm_cfg.get("lo") is not None or norm_cfg.get("hi") is not None)

        def fit(gaussianize):
            return fit_normalization(
                staging.rows(np.flatnonzero(fewshot)), transform, params,
                percentiles=tuple(norm_cfg.get("percentiles", (0.5, 99.5))),
                lo=norm_cfg.get("lo"), hi=norm_cfg.get("hi"), per_channel=norm_cfg.get("per_channel", True),
                units=target_units, channel_names=channel_names,
                channel_mode="replicate" if spec.channels == "replicate" else "identity",
                model_channels=model_channels, geometry=geometry, fitted_on=SPLIT_FEWSHOT,
                gaussianize=gaussianize,
            )

        try:
            record = fit(gaussianize)
        except ConfigError as exc:
            if norm_cfg.get("gaussianize") is not None or not gaussianize:
                raise
            # on by default only: few-shot values it cannot map (e.g. constant) are normalized without it
            log.warning("%s: normalize.gaussianize left off (%s)", name, exc)
            record = fit(False)
        attrs = {"dataset": name, "normalization": None, "seed": int(seed), "n_fewshot": sizes[SPLIT_FEWSHOT],
                 "n_validation": sizes[SPLIT_VALIDATION], "n_test": sizes[SPLIT_TEST], "wcs": wcs.result(),
                 **(provenance or {})}
        y_channels = record.to_model_channels(np.zeros((1, staging.row_shape[0], 1, 1))).shape[1]
        counts = {"clipped": 0, "lost": 0, **dict.fromkeys(SPLITS, 0)}
        # chunks of about 256 KB: one row per chunk at 256 px; 21 rows at 3x32x32 (random reads stay
        # cheap, and HDF5's chunk index does not grow per row: measured 50 MB at 10,000 rows of 32 px)
        chunk_rows = max(1, 2**18 // (4 * y_channels * resolution * resolution))
        staging.close_file()
        # the staged float32 maps become the output's ``physical`` dataset (moved, not copied)
        with TensorFileWriter(tensors_path, (n, y_channels, resolution, resolution), "images", attrs,
                              chunk_rows=chunk_rows, start_from=staging.path) as out:
            physical = out.dataset(_Staging.DATASET, {"units": record.units, "channel_names": record.channel_names})
            clipped = out.create_rows("clipped", (y_channels, resolution, resolution), "uint8")
            for start, stop, maps in _Staging.blocks_of(physical, staging.rows_per_block):
                normalized, mask, lost = record._normalize(maps)
                out.write(start, normalized, names[start:stop])
                clipped[start:stop] = record.to_model_channels(mask).astype(np.uint8)
                counts["clipped"] += int(mask.sum())
                counts["lost"] += int(lost.sum())
                for label in SPLITS:
                    counts[label] += int(mask[split[start:stop] == label].sum())
            per_map = int(np.prod(staging.row_shape))
            if transform == "lupton":
                _check_lupton_loss(name, record, counts["lost"] / (n * per_map),
                                   float(lup.get("max_clipped_share", LUPTON_MAX_CLIPPED_SHARE)))
            out.attrs["normalization"] = record.to_json()
            out.attrs["clipped_share"] = json.dumps({"all": counts["clipped"] / (n * per_map),
                                                     **{label: counts[label] / (per_map * sizes[label])
                                                        for label in SPLITS if sizes[label]}})
            out.add_dataset("split", np.array(list(split), dtype=object))
    finally:
        readers.close()  # stops the readers (on this thread) when a bad file ended the run
        staging.close()
    _write_rejected(rejected_path, rejected)
    log.info("%s: %d maps (%d few-shot, %d validation, %d test, %d unused), %d rejected; %s lo=%s hi=%s %s "
             "(percentiles of the few-shot maps); clipped %.3g%% of all pixels (few-shot %.3g%%, in the transform "
             "%.3g%%), kept in tensors.h5 'clipped'", name, n, sizes[SPLIT_FEWSHOT], sizes[SPLIT_VALIDATION],
             sizes[SPLIT_TEST], sizes[SPLIT_UNUSED], len(rejected), transform, [round(v, 4) for v in record.lo],
             [round(v, 4) for v in record.hi], record.units, 100 * counts["clipped"] / (n * per_map),
             100 * record.clipped_fraction, 100 * record.transform_clipped_fraction)
    return IngestResult(n, len(rejected), rejected, record, tensors_path, rejected_path)


class _Staging:
    """The accepted maps in physical units, float32, on disk next to the output while ingest runs.

    Rows are appended in blocks of about ``block_bytes`` and read back in such blocks, so
    ingest's memory does not grow with the number of files. The staged file (dataset
    ``physical``) is then moved into place as the start of tensors.h5: the float32 maps are
    what it keeps as ``physical`` and what ``x`` is normalized from, written once.
    """

    DATASET = "physical"

    def __init__(self, path: Path, block_bytes: int | None = None):
        self.path, self.block_bytes = path, STAGING_BLOCK_BYTES if block_bytes is None else block_bytes
        self._h5, self._ds, self._buffer, self.row_shape = None, None, [], None

    @property
    def rows_per_block(self) -> int:
        return max(1, self.block_bytes // (4 * int(np.prod(self.row_shape))))

    def append(self, data: np.ndarray) -> None:
        if self.row_shape is None:
            self.row_shape = tuple(data.shape)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._h5 = h5py.File(self.path, "w", rdcc_nbytes=2**20)
            # chunks of about 256 KB like x's (one row at 256 px; many rows of small maps: HDF5's
            # chunk index of one row per chunk grows with the dataset, measured 50 MB more at
            # 10,000 rows of 3x32x32)
            chunk = max(1, 2**18 // (4 * int(np.prod(self.row_shape))))
            self._ds = self._h5.create_dataset(self.DATASET, shape=(0, *self.row_shape),
                                               maxshape=(None, *self.row_shape), dtype="float32",
                                               chunks=(chunk, *self.row_shape))
        elif tuple(data.shape) != self.row_shape:
            raise ValueError(f"staged maps must be {self.row_shape}, got {data.shape}")
        self._buffer.append(data.astype(np.float32))
        if len(self._buffer) >= self.rows_per_block:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            start = self._ds.shape[0]
            self._ds.resize(start + len(self._buffer), axis=0)
            self._ds[start:] = np.stack(self._buffer)
            self._buffer = []

    def rows(self, index: np.ndarray) -> np.ndarray:
        """The staged rows ``index`` (increasing)."""
        from .store import _read_selected

        return _read_selected(self._ds, np.asarray(index))

    @staticmethod
    def blocks_of(dataset, step: int):
        """(start, stop, maps) over all rows of ``dataset``, ``step`` rows at a time."""
        for start in range(0, dataset.shape[0], step):
            stop = min(start + step, dataset.shape[0])
            yield start, stop, dataset[start:stop]

    def close_file(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def close(self) -> None:
        self.close_file()
        self.path.unlink(missing_ok=True)


class _WcsTracker:
    """The inputs' common WCS, followed file by file (only the first header and a verdict are kept)."""

    def __init__(self, dataset: str):
        self.dataset, self.first, self.first_name, self.reason, self.count = dataset, None, None, None, 0

    def add(self, header: dict | None, name: str) -> None:
        self.count += 1
        if self.count == 1:
            self.first, self.first_name = header or {}, name
            return
        if self.reason is not None:
            return
        header = header or {}
        if not self.first:
            if header:
                self.reason = f"{self.first_name} has none while {name} has one"
        elif header != self.first:
            keys = sorted(k for k in set(self.first) | set(header) if self.first.get(k) != header.get(k))
            differ = ", ".join(keys[:6]) or "keywords"
            self.reason = f"the inputs' WCS differ ({name} vs {self.first_name} in {differ}); the outputs carry none"

    def result(self) -> dict | None:
        """The shared WCS header, or None (with the logged reason) when the inputs have none or differ."""
        if self.reason is not None:
            log.warning("%s: no WCS kept: %s", self.dataset, self.reason)
            return None
        return self.first or None


def _check_lupton_loss(name: str, record, share: float, limit: float) -> None:
    """Refuse a Lupton normalization that loses more than ``limit`` of the band-pixels (``share``, of all maps)."""
    if share <= limit:
        return
    p = record.params
    softening = [round(float(p["stretch"]) * float(s) / float(p["Q"]), 6) for s in p["band_scales"]]
    raise ConfigError(
        f"datasets.{name}: the Lupton stretch loses {100 * share:.1f}% of the band-pixels (bands below "
        f"'minimum' set to 0, pixels whose brightest band exceeds 1 rescaled), more than "
        f"normalize.lupton.max_clipped_share = {limit}; these values cannot be mapped back to physical units. "
        f"Either use the invertible per-band asinh stretch with the same scales (normalize: {{transform: asinh, "
        f"softening: {softening}}}), or accept the loss with a larger max_clipped_share (the lost pixels are "
        "then counted in the record and flagged in the 'clipped' mask and the CLIPPED extension of every output)")
