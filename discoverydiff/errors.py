"""Errors meant for the person running the workflow.

Every error names the file (or config key) and the problem, so that a failed Snakemake
job's log says what to fix without a traceback hunt.
"""

from __future__ import annotations

from pathlib import Path


class DiscoveryDiffError(Exception):
    """Base class of the errors this package raises on purpose."""


class InputError(DiscoveryDiffError):
    """A bad input file: unreadable, truncated, wrong shape, NaN/inf, missing key.

    Parameters
    ----------
    path : str or Path
        The offending file.
    problem : str
        What is wrong with it, in words a user can act on.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(DiscoveryDiffError):
    """An invalid configuration value; the message names the key."""
