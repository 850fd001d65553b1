"""A throwaway one-node SLURM cluster (munged, slurmctld, slurmd on localhost) for the tests.

Everything it writes (slurm.conf, gres.conf, the munge key and socket, state, spool, pid and log
files) lies under one directory; the system's /etc/slurm and /etc/munge are never read or written.
The daemons run in the foreground as children of this process, so they are stopped by the process
ids this module started (checked against their pid files), never by name.
"""

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol", "srun")
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])


class ClusterUnavailable(RuntimeError):
    """The cluster could not be started here; the message says why, with the daemons' log tails."""


def which(name: str) -> str | None:
    return shutil.which(name, path=SEARCH_PATH)


def missing_programs() -> list[str]:
    return [name for name in DAEMONS + CLIENTS if which(name) is None]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():  # runs in the child before exec: a killed test run takes its daemons with it
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


NOISE = ("pmix", "MPI: Cannot create context")  # Debian's slurmd loads the PMIx plugins it cannot use


def _tail(path: Path, n: int = 12) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines()
                 if not any(noise in line for noise in NOISE)]
    except OSError:
        return f"({path.name}: no log)"
    return f"--- {path.name} ---\n" + "\n".join(lines[-n:])


class SlurmCluster:
    """One node, `localhost`, in partition `partition`, with one GPU gres that is no device."""

    def __init__(self, root: Path, partition: str = "debug", memory_mb: int | None = None):
        self.root = Path(root)
        self.partition = partition
        self.cpus = os.cpu_count() or 1
        if memory_mb is None:
            total_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                                if line.startswith("MemTotal:")))
            memory_mb = max(1000, int(total_kb / 1024 * 0.5))
        self.memory_mb = memory_mb
        self.conf = self.root / "etc" / "slurm.conf"
        self.bin = self.root / "bin"
        self.logs = self.root / "log"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self._procs: dict[str, subprocess.Popen] = {}
        self._pid_files = {"munged": self.root / "run" / "munged.pid",
                           "slurmctld": self.root / "run" / "slurmctld.pid",
                           "slurmd": self.root / "run" / "slurmd.pid"}

    # -- environment for client commands ---------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """os.environ with SLURM_CONF pointing here and the srun shim first on PATH."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = os.pathsep.join([str(self.bin), env.get("PATH", "")])
        return env

    def client(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout)

    # -- files -----------------------------------------------------------------------------------
    def _write_files(self, ctld_port: int, slurmd_port: int):
        for sub in ("etc", "bin", "log", "run", "state", "spool", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        r = self.root
        self.conf.write_text("\n".join([
            "ClusterName=discoverydifftest",
            "SlurmctldHost=localhost",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            "MpiDefault=none",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "ReturnToService=2",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            # squeue keeps finished jobs this long; the slurm executor plugin needs them to see the end state
            "MinJobAge=300",
            "GresTypes=gpu",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={self._pid_files['slurmctld']}",
            f"SlurmdPidFile={self._pid_files['slurmd']}",
            f"SlurmctldLogFile={self.logs / 'slurmctld.log'}",
            f"SlurmdLogFile={self.logs / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "MailProg=/bin/true",
            f"PlugStackConfig={r / 'etc' / 'plugstack.conf'}",
            f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} "
            "Gres=gpu:1 State=UNKNOWN",
            f"PartitionName={self.partition} Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))
        # GPUs that are not there, so that jobs asking for --gpus / --gres=gpu schedule on a GPU-less
        # machine. A count-only line is not enough: slurmd 22.05 drops file-less GPUs ("Removing file-less
        # GPU gpu:(null) from final GRES list") and slurmctld then drains the node; /dev/null is a valid
        # character device that nothing mistakes for a GPU (task/none: no device cgroup is set up).
        (r / "etc" / "gres.conf").write_text("NodeName=localhost Name=gpu Count=1 File=/dev/null\n")
        (r / "etc" / "plugstack.conf").write_text("")
        # The slurm executor's job step removes every SLURM_* variable (SLURM_CONF included) before
        # it calls srun inside the allocation; on a real cluster srun then reads /etc/slurm/slurm.conf.
        # This shim, first on the exported PATH, points srun at this cluster's configuration instead.
        srun = self.bin / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec "{which("srun")}" "$@"\n')
        srun.chmod(0o755)

    # -- daemons ---------------------------------------------------------------------------------
    def _spawn(self, name: str, *args: str):
        log = open(self.logs / f"{name}.stderr", "w")  # the daemon keeps its own copy of the descriptor
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env["SLURM_CONF"] = str(self.conf)
        self._procs[name] = subprocess.Popen([which(name), *args], stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=env, cwd=self.root,
                                             start_new_session=True, preexec_fn=_die_with_parent)
        log.close()

    def _wait(self, what: str, ready, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise ClusterUnavailable(f"{name} exited with status {proc.returncode} while waiting "
                                             f"for {what}\n{self.log_tails()}")
            if ready():
                return
            time.sleep(0.2)
        nodes = ""
        with contextlib.suppress(Exception):
            nodes = "node state and reason: " + self.client("sinfo", "-h", "-N", "-o", "%N %T %E", timeout=10).stdout
        raise ClusterUnavailable(f"timed out after {timeout:.0f} s waiting for {what}\n{nodes}{self.log_tails()}")

    def log_tails(self) -> str:
        """The last lines of each daemon's log (its stderr where it has written no log file yet)."""
        parts = []
        for name in ("munged", "slurmctld", "slurmd"):
            log = self.logs / f"{name}.log"
            path = log if log.exists() and log.stat().st_size else self.logs / f"{name}.stderr"
            if path.exists():
                parts.append(_tail(path))
        return "\n".join(parts) or "(no daemon logs)"

    def _node_idle(self) -> bool:
        try:
            out = self.client("sinfo", "-h", "-N", "-o", "%t", timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return out.returncode == 0 and out.stdout.strip() == "idle"

    def _ctld_up(self) -> bool:
        try:
            out = self.client("scontrol", "ping", timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return out.returncode == 0 and "is UP" in out.stdout

    def start(self, timeout: float = 60) -> "SlurmCluster":
        """Start munged, slurmctld and slurmd; raise ClusterUnavailable (daemons stopped) on failure."""
        try:
            self._write_files(_free_port(), _free_port())
            key = self.root / "munge" / "munge.key"
            made = subprocess.run([which("mungekey"), "-c", "-k", str(key)], capture_output=True, text=True)
            if made.returncode != 0:
                raise ClusterUnavailable(f"mungekey failed: {made.stderr.strip()}")
            # --force: the pytest directory is not world-searchable, which munged otherwise refuses for its
            # socket; only root, on this machine, talks to this munged
            self._spawn("munged", "--foreground", "--force", f"--key-file={key}", f"--socket={self.munge_socket}",
                        f"--pid-file={self._pid_files['munged']}", f"--seed-file={self.root / 'munge' / 'seed'}",
                        "--num-threads=2")
            self._wait("munged's socket", self.munge_socket.exists, timeout)
            self._spawn("slurmctld", "-D", "-c", "-i", "-f", str(self.conf))
            self._wait("slurmctld (scontrol ping)", self._ctld_up, timeout)
            self._spawn("slurmd", "-D", "-N", "localhost", "-f", str(self.conf))
            self._wait("node localhost idle (sinfo)", self._node_idle, timeout)
        except ClusterUnavailable:
            self.stop()
            raise
        except (OSError, subprocess.SubprocessError) as exc:
            self.stop()
            raise ClusterUnavailable(f"{type(exc).__name__}: {exc}\n{self.log_tails()}") from exc
        return self

    def stop(self):
        """Cancel this cluster's jobs, then stop slurmd, slurmctld and munged: only the processes started here."""
        if self._procs.get("slurmctld") and self._procs["slurmctld"].poll() is None:
            with contextlib.suppress(Exception):
                self.client("scancel", "--full", "--user=root", timeout=10)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and self.client("squeue", "-h", timeout=10).stdout.strip():
                    time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self._procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            pid_file = self._pid_files[name]
            with contextlib.suppress(OSError, ValueError):
                recorded = int(pid_file.read_text().split()[0])
                if recorded != proc.pid:  # never signal a process this module did not start
                    print(f"{pid_file} names pid {recorded}, not {proc.pid}: stopping {proc.pid} only")
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
