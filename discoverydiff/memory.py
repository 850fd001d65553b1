"""Memory-aware batches: how many items of a batched torch computation fit in what a job has.

Every batched model path (DDIM inversion and decoding, screening previews, Jacobian products,
fine-tuning steps) asks :func:`plan_batch` how many of its items to run at once. The answer is
the configured batch (a maximum) or fewer:

1. **Need per item, measured once per shape.** The first time a job runs a kind of work on items
   of one shape, :func:`measure_peak_mb` runs it on 1 item (and on 2 when the configured batch
   does not obviously fit) and records the peak memory it added: on a CUDA device from torch's
   allocator statistics, on the CPU from the kernel's resident-set high-water mark (Linux
   ``VmHWM``, reset through ``/proc/self/clear_refs``). Two points give a fixed part and a part
   per item; the result stays in a small table (:data:`NEEDS`) for the rest of the job.
2. **What is free.** On a GPU: the device's free memory (``cudaMemGetInfo``) plus what torch
   holds cached but unused. On the CPU: the memory the kernel can give (``MemAvailable``, and the
   job's cgroup limit where SLURM or a container sets one). Either is lowered to the job's
   **memory limit** less what the job already holds: the environment variable
   ``DISCOVERYDIFF_MEMORY_LIMIT`` (e.g. ``12G``, ``800M``; plain numbers are MB), else the
   config's ``memory_limit_mb``, else (CPU jobs of a workflow) the rule's ``mem_mb`` resource.
3. **The batch.** The largest batch <= the configured one whose need fits 90% of that; when not
   even one item fits, :class:`MemoryBudgetError` names the rule, the need and what is free.

Out-of-memory errors that slip through on a GPU (fragmentation, another process) are caught
by the callers (:func:`is_out_of_memory`), which halve the batch and redo the work.

A CPU job is killed by the kernel when it runs out of memory, with nothing in its log: that is
why the need is measured before the batch is chosen, not discovered by failing.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ConfigError, DiscoveryDiffError

log = logging.getLogger(__name__)

#: Environment variable: the most memory (MB, or with a K/M/G/T suffix) a job's batches may bring it to.
ENV_LIMIT = "DISCOVERYDIFF_MEMORY_LIMIT"
#: Share of the free memory a plan may fill (the rest absorbs measurement noise and fragmentation).
HEADROOM = 0.9
_MB = 2.0**20

#: The job that is running (set by :func:`discoverydiff.workflow.run_step`), named in errors.
JOB = {"rule": None, "mem_mb": None}


class MemoryBudgetError(DiscoveryDiffError):
    """Not even one item of a batched computation fits in the memory the job has."""


@dataclass
class Need:
    """Memory (MB) a kind of work adds at batch b: ``fixed + per_item * b``."""

    fixed: float
    per_item: float
    points: int  # how many batch sizes it was measured at (1: fixed folded into per_item)

    def at(self, batch: int) -> float:
        return self.fixed + self.per_item * batch


#: Measured needs of this job: (kind, item shape, device, detail) -> Need.
NEEDS: dict[tuple, Need] = {}


# ----------------------------------------------------------------------------- sizes
def parse_mb(value, source: str) -> float:
    """MB from a number (MB) or a string with a unit: ``"12G"``, ``"800M"``, ``"1.5 GB"``, ``"2048"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        mb = float(value)
    else:
        text = str(value).strip().upper().removesuffix("IB").removesuffix("B")
        factor = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2}.get(text[-1:] if text else "", None)
        number = text[:-1] if factor is not None else text
        try:
            mb = float(number) * (factor if factor is not None else 1.0)
        except ValueError:
            raise ConfigError(f"{source} = {value!r} is not a memory size; write e.g. 12G, 800M or 2048 (MB)") from None
    if not math.isfinite(mb) or mb <= 0:
        raise ConfigError(f"{source} = {value!r} must be a positive memory size (e.g. 12G)")
    return mb


def memory_limit_mb(config_value=None) -> tuple[float | None, str]:
    """(limit in MB or None, where it came from): the environment, the config, the rule's mem_mb."""
    if os.environ.get(ENV_LIMIT, "").strip():
        return parse_mb(os.environ[ENV_LIMIT], ENV_LIMIT), ENV_LIMIT
    if config_value is not None:
        return parse_mb(config_value, "memory_limit_mb"), "config memory_limit_mb"
    return None, ""


def _proc_status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def resident_mb() -> float:
    """This process's resident memory (MB)."""
    rss = _proc_status_mb("VmRSS")
    if rss is None:
        import psutil

        rss = psutil.Process().memory_info().rss / _MB
    return rss


def _cgroup_free_mb() -> float | None:
    """What the job's cgroup (SLURM, a container) still allows, or None without a limit."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as fh:
                limit = fh.read().strip()
            with open(usage_file) as fh:
                usage = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 2**60:
            return None
        return (int(limit) - usage) / _MB
    return None


def host_free_mb() -> float:
    """Memory the kernel can give this process now (MB): MemAvailable, lowered to the cgroup's limit."""
    import psutil

    free = psutil.virtual_memory().available / _MB
    cgroup = _cgroup_free_mb()
    return min(free, cgroup) if cgroup is not None else free


def device_free_mb(device) -> float:
    """Free memory (MB) of ``device``: the GPU's (with torch's unused cache), or the host's."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return (free + cached) / _MB
    return host_free_mb()


def device_used_mb(device) -> float:
    """What this job holds on ``device`` (MB): torch's allocated GPU memory, or the resident set."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / _MB
    return resident_mb()


def budget_mb(device, config_limit=None) -> tuple[float, str]:
    """(MB the job may still add on ``device``, how that was found) for a batch plan."""
    import torch

    device = torch.device(device)
    free = device_free_mb(device)
    what = f"{free:.0f} MB free on {device}"
    limit, source = memory_limit_mb(config_limit)
    if limit is None and device.type == "cpu" and JOB.get("mem_mb"):
        limit, source = float(JOB["mem_mb"]), "the rule's mem_mb resource"
    if limit is not None:
        used = device_used_mb(device)
        if limit - used < free:
            free = max(limit - used, 0.0)
            what = f"{free:.0f} MB free under the limit of {limit:.0f} MB from {source} (the job holds {used:.0f} MB)"
    return free, what


# ----------------------------------------------------------------------------- measuring
def _libc_malloc_trim() -> None:
    """Give freed heap pages back to the kernel (glibc), so a probe's pages are counted anew."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


#: The highest resident-set high-water mark (MB) seen before a reset (:func:`job_peak_mb`).
_EARLIER_PEAK = {"mb": 0.0}


def job_peak_mb() -> float | None:
    """This process's peak resident memory (MB) over its life (the probes' resets included)."""
    now = _proc_status_mb("VmHWM")
    if now is None:
        return None
    return max(now, _EARLIER_PEAK["mb"])


def _reset_high_water_mark() -> bool:
    before = _proc_status_mb("VmHWM")
    if before is not None:
        _EARLIER_PEAK["mb"] = max(_EARLIER_PEAK["mb"], before)
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current resident set (Linux >= 4.0)
        return True
    except OSError:
        return False


def measure_peak_mb(fn: Callable[[], object], device) -> float | None:
    """Peak memory (MB) that ``fn()`` adds on ``device``; None where it cannot be measured.

    CUDA: torch's peak allocated bytes over the call, less those allocated before it. CPU:
    the rise of the resident set's high-water mark over the call (Linux), after handing freed
    heap pages back, so memory the call reuses from earlier work still counts.
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / _MB
    if device.type != "cpu":
        return None
    _libc_malloc_trim()
    if not _reset_high_water_mark():
        return None
    base = resident_mb()
    fn()
    peak = _proc_status_mb("VmHWM")
    return None if peak is None else max(peak - base, 0.0)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's out-of-memory errors (CUDA, MPS, the CPU allocator)."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and ("out of memory" in str(exc).lower()
                                              or "can't allocate memory" in str(exc).lower())


def free_cached(device) -> None:
    """Hand torch's cached blocks back (after an out-of-memory error), so a smaller retry can use them."""
    import gc

    import torch

    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- planning
def _job_name() -> str:
    return f"rule {JOB['rule']}" if JOB.get("rule") else "this job"


def plan_batch(kind: str, probe: Callable[[int], object], requested: int, device, key: tuple = (),
               config_limit=None, extra_mb: float = 0.0, min_item_mb: float = 0.0) -> int:
    """The largest batch <= ``requested`` whose measured need fits the job's free memory.

    Parameters
    ----------
    kind : str
        What one item is, for the table and the messages (``"DDIM step"``, ``"Jacobian product"``).
    probe : callable
        ``probe(b)`` runs the work on b items (results discarded; it must not change any state
        the job's results depend on).
    requested : int
        The configured batch: a maximum.
    device : torch.device or str
    key : tuple
        What else the need depends on (item shape, model, precision): one measurement per key.
    config_limit : float, optional
        The config's ``memory_limit_mb``.
    extra_mb : float
        Memory the work will add besides what a probe shows (an optimiser's state).
    min_item_mb : float
        The least an item can need (its own tensors): a floor under a measurement that the
        resident set's page granularity or reused memory made smaller.

    Raises
    ------
    MemoryBudgetError
        When one item needs more than is free, naming the rule, the need and what is free.
    """
    import torch

    requested = max(1, int(requested))
    device = torch.device(device)
    table_key = (kind, str(device), *key)
    need = NEEDS.get(table_key)
    if need is None:
        one = measure_peak_mb(lambda: probe(1), device)
        if one is None:
            log.info("memory: cannot measure %s on %s here; using the configured batch %d", kind, device, requested)
            return requested
        need = NEEDS[table_key] = Need(0.0, max(one, min_item_mb), 1)
        log.info("memory: one %s takes %.0f MB on %s", kind, one, device)
    free, what = budget_mb(device, config_limit)
    usable = HEADROOM * free - extra_mb
    if need.at(requested) <= usable:
        return requested
    if need.points == 1 and requested > 1 and need.per_item <= usable:
        two = measure_peak_mb(lambda: probe(2), device)
        if two is not None:
            # noise can make the second point smaller than the first: keep at least half of it per item
            per_item = max(two - need.per_item, 0.5 * need.per_item, min_item_mb)
            need = NEEDS[table_key] = Need(max(need.per_item - per_item, 0.0), per_item, 2)
            log.info("memory: %s: %.0f MB + %.0f MB per item on %s", kind, need.fixed, need.per_item, device)
            free, what = budget_mb(device, config_limit)
            usable = HEADROOM * free - extra_mb
    fits = int((usable - need.fixed) // need.per_item) if need.per_item > 0 else requested
    if fits < 1:
        raise MemoryBudgetError(
            f"{_job_name()}: one {kind} needs {need.at(1) + extra_mb:.0f} MB on {device}, but only {what}, "
            f"of which batches may fill {HEADROOM:.0%}. Free memory (stop other jobs, run fewer at once), raise "
            f"the limit ({ENV_LIMIT}, memory_limit_mb or the rule's mem_mb), or lower the model's resolution")
    batch = min(requested, fits)
    if batch == requested:
        log.info("memory: %d of %s fit: %.0f MB, %s", batch, kind, need.at(batch) + extra_mb, what)
        return batch
    log.warning("memory: %s runs %d at a time instead of the configured %d: %d need %.0f MB, %s",
                kind, batch, requested, requested, need.at(requested) + extra_mb, what)
    return batch


def split(n: int, batch: int) -> list[slice]:
    """Slices of ``range(n)`` of at most ``batch`` items, halving: a batch of 16 at 6 runs as 4 x 4.

    Halves (rather than runs of ``batch`` and a remainder) keep the sub-batches aligned to the
    configured batch's divisors, so a run whose batch was lowered to 2^-j of a power-of-two
    batch gives exactly what the smaller configured batch gives.
    """
    if n <= 0:
        return []
    parts = 1
    while math.ceil(n / parts) > batch:
        parts *= 2
    size = math.ceil(n / parts)
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def set_job(rule: str | None = None, mem_mb=None) -> None:
    """Name the running job (rule and its mem_mb resource) for plans and errors."""
    JOB["rule"] = rule
    try:
        JOB["mem_mb"] = float(mem_mb) if mem_mb not in (None, "") else None
    except (TypeError, ValueError):
        JOB["mem_mb"] = None


__all__ = ["ENV_LIMIT", "HEADROOM", "MemoryBudgetError", "NEEDS", "Need", "budget_mb", "device_free_mb",
           "host_free_mb", "is_out_of_memory", "job_peak_mb", "measure_peak_mb", "memory_limit_mb", "parse_mb",
           "plan_batch", "set_job", "split"]
