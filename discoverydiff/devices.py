"""One model job per GPU: the local jobs of a run spread over the visible devices.

Snakemake's ``gpu`` resource says how many model jobs run at once, not on which device: every
job that asks torch for ``cuda`` gets ``cuda:0``. So each job that sees two or more devices
claims a **slot** before it touches one: an exclusive lock (``fcntl.flock``) on a file named
after the device's UUID (the same card under every ``CUDA_VISIBLE_DEVICES`` numbering) in a
per-user directory of the machine's temporary space. The first free slot wins; when every
slot is taken the job waits for one. The kernel drops the lock when the process ends, however
it ends, so a killed job never leaves a device claimed.

With ``--resources gpu=N`` and N visible devices the N jobs that run at once take one device
each. ``DISCOVERYDIFF_JOBS_PER_GPU`` (default 1) allows several jobs per device (small models);
``DISCOVERYDIFF_SLOT_DIR`` moves the lock files. A job that sees one device (a SLURM job, which
is given its own; a one-GPU workstation) claims nothing.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

ENV_SLOT_DIR = "DISCOVERYDIFF_SLOT_DIR"
ENV_JOBS_PER_DEVICE = "DISCOVERYDIFF_JOBS_PER_GPU"

#: The slot this process holds: (device index, open lock file), kept until the process ends.
_HELD: dict = {}


def slot_dir() -> Path:
    """Where the lock files live: ``$DISCOVERYDIFF_SLOT_DIR``, else ``<tmp>/discoverydiff-gpu-slots-<uid>``."""
    default = Path(tempfile.gettempdir()) / f"discoverydiff-gpu-slots-{os.getuid()}"
    path = Path(os.environ.get(ENV_SLOT_DIR) or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def jobs_per_device() -> int:
    value = os.environ.get(ENV_JOBS_PER_DEVICE, "1").strip() or "1"
    try:
        jobs = int(value)
    except ValueError:
        jobs = 0
    if jobs < 1:
        from .errors import ConfigError

        raise ConfigError(f"{ENV_JOBS_PER_DEVICE} = {value!r} must be a whole number of jobs >= 1")
    return jobs


def _lock_name(device_id: str, slot: int) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{device_id}.slot{slot}.lock")


def try_claim(device_ids: list[str], lock_dir: Path, per_device: int = 1):
    """Claim the first free (device, slot), or return None: (device index, slot, open lock file).

    Devices are tried in order, the first slot of every device before the second of any, so
    that N jobs on N devices take one each.
    """
    for slot in range(per_device):
        for index, device_id in enumerate(device_ids):
            handle = open(Path(lock_dir) / _lock_name(device_id, slot), "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            return index, slot, handle
    return None


def claim_slot(device_ids: list[str], lock_dir: Path | None = None, per_device: int | None = None,
               poll_s: float = 0.5, timeout_s: float | None = None):
    """Claim a free slot of one of ``device_ids``, waiting while all are taken: (index, slot, lock file).

    ``device_ids`` are stable names of the visible devices (UUIDs), in torch's order: the index
    returned is torch's ``cuda:index``. The lock is held while the returned file stays open.
    """
    lock_dir = slot_dir() if lock_dir is None else Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    per_device = jobs_per_device() if per_device is None else per_device
    start, told = time.monotonic(), False
    while True:
        claim = try_claim(device_ids, lock_dir, per_device)
        if claim is not None:
            return claim
        if not told:
            log.info("every GPU slot (%d device(s) x %d) is taken; waiting for one", len(device_ids), per_device)
            told = True
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"no free GPU slot among {device_ids} within {timeout_s} s")
        time.sleep(poll_s)


def cuda_device_ids() -> list[str]:
    """Stable names of torch's visible CUDA devices, in torch's order (their UUIDs where torch has them)."""
    import torch

    ids = []
    for index in range(torch.cuda.device_count()):
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        ids.append(f"GPU-{uuid}" if uuid is not None else f"{os.uname().nodename}-cuda{_visible(index)}")
    return ids


def _visible(index: int) -> str:
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    return visible[index] if index < len(visible) else str(index)


def claimed_cuda_index() -> int:
    """torch's index of the CUDA device this job runs on: its slot's, claimed on the first call.

    One visible device: 0, nothing claimed (Snakemake's ``gpu`` resource decides how many jobs
    share it).
    """
    import torch

    if "index" in _HELD:
        return _HELD["index"]
    count = torch.cuda.device_count()
    if count < 2:
        _HELD["index"] = 0
        return 0
    index, slot, handle = claim_slot(cuda_device_ids())
    _HELD.update(index=index, slot=slot, handle=handle)
    torch.cuda.set_device(index)
    log.info("GPU slot: cuda:%d (%s, slot %d) of %d visible devices", index, torch.cuda.get_device_name(index),
             slot, count)
    return index


__all__ = ["ENV_JOBS_PER_DEVICE", "ENV_SLOT_DIR", "claim_slot", "claimed_cuda_index", "cuda_device_ids",
           "jobs_per_device", "slot_dir", "try_claim"]
