"""Dry runs of documented Snakemake commands in a scratch copy of the repository (tests' helper).

A command is taken as a user copies it from a shell block of a Markdown page; before the dry run:

- the repository is copied (without results, the venv, .git), so nothing a command writes lands in
  the checkout, and the commands of one page run in order in one copy (``cp`` lines included:
  ``cp config/templates/field.yaml my.yaml`` and then ``--configfile my.yaml`` work);
- every ``/path/to/...  # FILL IN`` value of a config the command names is pointed at a scratch
  folder where an empty file (a glob: one matching file; no suffix: a directory) is created, so the
  globbed inputs and checkpoints exist;
- without ``conda`` on the PATH, ``--use-conda`` and ``--conda-create-envs-only`` are dropped (the
  environments are tested by tests/test_envs.py); ``--report FILE`` is dropped (a report needs a
  finished run): the rest of such a command is dry-run.

A shell block preceded by ``<!-- docs-test: skip REASON -->`` is not run (the reason is required).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console", "zsh"}
SKIP_MARKER = re.compile(r"<!--\s*docs-test:\s*skip\b\s*(?P<reason>.*?)\s*-->")
FILL_IN = re.compile(r"^(?P<head>.*?)(?P<path>/path/to/[^\s#'\"]+)(?P<tail>.*#\s*FILL IN.*)$")
IGNORED = shutil.ignore_patterns(".git", ".venv", "results", ".snakemake", "__pycache__", "*.egg-info",
                                 ".pytest_cache", ".ruff_cache", "report.html")
# Modes that never execute jobs, so need no --cores; dropped before the dry run when they need more
# than the command line (a finished run, conda).
NO_EXECUTION = ("report", "lint", "unlock", "conda_create_envs_only", "list_rules", "list_target_rules",
                "summary", "detailed_summary", "dag", "rulegraph", "filegraph", "cleanup_metadata")


@dataclass
class Command:
    """One command of a shell block: the words after the environment assignments."""

    source: str  # "FILE:LINE"
    words: list[str]
    env: dict = field(default_factory=dict)
    skip: str | None = None  # the reason of a skip marker

    @property
    def program(self) -> str:
        return Path(self.words[0]).name if self.words else ""


def shell_commands(markdown: str, source: str = "<doc>") -> list[Command]:
    """The commands of the shell blocks of a Markdown text, in order (continuations joined,
    comments and prompts removed, ``&&`` / ``;`` / ``||`` chains split)."""
    commands = []
    lines = markdown.splitlines()
    i = 0
    previous = ""
    while i < len(lines):
        fence = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", lines[i])
        if not fence:
            if lines[i].strip():
                previous = lines[i]
            i += 1
            continue
        marker, language = fence.group(1), fence.group(2).lower()
        marked = SKIP_MARKER.search(previous)
        skip = (marked.group("reason") or "no reason given") if marked else None
        i += 1
        start = i
        while i < len(lines) and not lines[i].strip().startswith(marker):
            i += 1
        body, i, previous = lines[start:i], i + 1, ""
        if language not in SHELL_LANGUAGES:
            continue
        logical, first = "", None
        for number, line in enumerate(body, start=start + 1):
            first = first or number
            if line.rstrip().endswith("\\"):
                logical += line.rstrip()[:-1] + " "
                continue
            logical += line
            commands.extend(_split(logical, f"{source}:{first}", skip))
            logical, first = "", None
        if logical.strip():
            commands.extend(_split(logical, f"{source}:{first}", skip))
    return commands


def _split(line: str, source: str, skip: str | None) -> list[Command]:
    line = re.sub(r"^\s*[$%]\s+", "", line)
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # not shell (unbalanced quotes in an output listing)
        return []
    out, current = [], []
    for word in words + [";"]:
        if word in ("&&", "||", ";", "|"):
            env = {}
            while current and re.fullmatch(r"[A-Za-z_]\w*=.*", current[0]):
                key, _, value = current.pop(0).partition("=")
                env[key] = value
            if current:
                out.append(Command(source, current, env, skip))
            current = []
        else:
            current.append(word)
    return out


def copy_repository(dest: Path) -> Path:
    """The checkout's files (what a user has after cloning, plus the work tree's edits) under ``dest``."""
    shutil.copytree(REPO, dest, ignore=IGNORED, symlinks=True)
    demo = dest / "resources" / "demo"  # made by rule demo_inputs: never part of a checkout
    if demo.exists():
        shutil.rmtree(demo)
    return dest


def fill_placeholders(config: Path, scratch: Path) -> list[Path]:
    """Point every ``/path/to/X  # FILL IN`` of ``config`` at ``scratch/X`` and create it there
    (a glob: one matching file; a name with a suffix: an empty file; else a directory)."""
    made, lines = [], config.read_text().splitlines(keepends=True)
    for n, line in enumerate(lines):
        match = FILL_IN.match(line.rstrip("\n"))
        if not match:
            continue
        relative = match.group("path")[len("/path/to/"):]
        target = scratch / relative
        lines[n] = f"{match.group('head')}{target}{match.group('tail')}\n"
        if any(c in relative for c in "*?["):
            target = scratch / relative.replace("**/", "").replace("*", "example").replace("?", "x")
            target = Path(re.sub(r"\[[^\]]*\]", "x", str(target)))
        if target.suffix:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        else:
            target.mkdir(parents=True, exist_ok=True)
        made.append(target)
    config.write_text("".join(lines))
    return made


_PARSE = """
import json, sys
from snakemake.cli import parse_args
parser, args = parse_args(sys.argv[1:])
keys = ("cores", "jobs", "executor", "dryrun", "touch", "workflow_profile", "profile", "configfile", "use_conda")
out = {k: getattr(args, k, None) for k in keys + NO_EXECUTION}
print("PARSED " + json.dumps(out, default=str))
"""


def parsed_arguments(words: list[str], cwd: Path, env: dict | None = None) -> dict:
    """Snakemake's own reading of a command line in ``cwd``, profiles (and profiles/default) applied."""
    code = f"NO_EXECUTION = {NO_EXECUTION!r}\n" + _PARSE
    run = subprocess.run([sys.executable, "-c", code, *words], cwd=cwd, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, timeout=120)
    for line in run.stdout.splitlines():
        if line.startswith("PARSED "):
            return json.loads(line[len("PARSED "):])
    raise AssertionError(f"snakemake cannot parse {shlex.join(words)}: {run.stderr[-2000:]}")


def _drop(words: list[str], flag: str, takes_value: bool) -> list[str]:
    out, skip_next = [], False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if word == flag:
            skip_next = takes_value
            continue
        if takes_value and word.startswith(flag + "="):
            continue
        out.append(word)
    return out


def problems_of(command: Command, cwd: Path, scratch: Path) -> list[str]:
    """What stops a documented Snakemake command from running as written (empty: nothing), found by
    reading it as Snakemake does and dry-running it in ``cwd``."""
    words = command.words[1:]
    args = parsed_arguments(words, cwd, command.env)
    problems = []
    executes = not any(args.get(k) for k in NO_EXECUTION)
    local = args.get("executor") in (None, "local", "dryrun", "touch")
    if executes and local and not (args.get("dryrun") or args.get("touch")) and not (args.get("cores")
                                                                                     or args.get("jobs")):
        problems.append("no --cores (Snakemake 9 refuses to run local jobs without it)")
    if not local and args.get("workflow_profile") != "none":
        problems.append("a cluster run without --workflow-profile none also loads profiles/default, whose "
                        "resources gpu=1 lets one GPU job run at a time over the whole cluster")
    for config in args.get("configfile") or []:
        path = cwd / config
        if not path.is_file():
            problems.append(f"--configfile {config} does not exist (add the cp line that makes it, or mark the "
                            "block <!-- docs-test: skip REASON -->)")
            continue
        fill_placeholders(path, scratch)
    if problems:
        return problems
    if shutil.which("conda") is None:
        words = _drop(_drop(words, "--use-conda", False), "--conda-create-envs-only", False)
    words = _drop(words, "--report", True)
    if "--lint" in words:
        words = _drop(words, "--lint", False)
    run = subprocess.run([sys.executable, "-m", "snakemake", *words, "--dry-run"], cwd=cwd, capture_output=True,
                         text=True, env={**os.environ, **command.env}, timeout=300)
    if run.returncode != 0:
        problems.append(f"the dry run fails: {(run.stderr + run.stdout)[-1500:]}")
    return problems


def apply_cp(command: Command, cwd: Path) -> None:
    """``cp SRC... DEST`` of a documented block, inside the scratch copy."""
    paths = [cwd / w for w in command.words[1:] if not w.startswith("-")]
    *sources, dest = paths
    for source in sources:
        if source.is_dir():
            shutil.copytree(source, dest / source.name if dest.is_dir() else dest, dirs_exist_ok=True)
        else:
            shutil.copy(source, dest)
