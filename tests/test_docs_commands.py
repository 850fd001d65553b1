"""Every Snakemake command of the docs' shell blocks runs as written: read as Snakemake reads it, then
dry-run (``--dry-run``) in a scratch copy of the repository (tests/dryrun.py says how placeholders
and conda are handled). Nothing is executed but the dry runs and the blocks' ``cp`` lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from dryrun import REPO, Command, apply_cp, copy_repository, problems_of, shell_commands

DOCS = sorted({REPO / "README.md", *REPO.glob("docs/**/*.md"), *REPO.glob("config/**/README.md"),
               *REPO.glob("profiles/*/README.md")})


def documented(path: Path) -> list[Command]:
    return shell_commands(path.read_text(), str(path.relative_to(REPO)))


def test_the_docs_document_snakemake_commands():
    commands = {str(p.relative_to(REPO)): [c for c in documented(p) if c.program == "snakemake"] for p in DOCS}
    assert commands["config/README.md"] and commands["profiles/slurm/README.md"] and commands["docs/paper.md"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_documented_snakemake_command_dry_runs(doc, tmp_path):
    commands = documented(doc)
    if not any(c.program == "snakemake" and not c.skip for c in commands):
        pytest.skip(f"{doc.relative_to(REPO)} has no snakemake command to run")
    copy = copy_repository(tmp_path / "repo")
    failures = []
    for command in commands:
        if command.skip:
            continue
        if command.program == "cp":
            apply_cp(command, copy)
        elif command.program == "snakemake":
            failures += [f"{command.source}: {' '.join(command.words)}\n  {p}"
                         for p in problems_of(command, copy, tmp_path / "placeholders")]
    assert not failures, "\n".join(failures)


MARKDOWN = """
Intro `snakemake inline` is not a block.

```bash
FOO=1 snakemake --cores 2 \\
    --configfile a.yaml   # a comment
cp config/templates/field.yaml mine.yaml && snakemake -n --configfile mine.yaml
```

<!-- docs-test: skip needs your own data -->
```bash
snakemake --cores 8 --configfile yours.yaml
```

```yaml
snakemake: not a command
```
"""


def test_shell_blocks_are_read_as_a_shell_reads_them():
    commands = shell_commands(MARKDOWN, "x.md")
    assert [(c.source, c.words, c.env, c.skip) for c in commands] == [
        ("x.md:5", ["snakemake", "--cores", "2", "--configfile", "a.yaml"], {"FOO": "1"}, None),
        ("x.md:7", ["cp", "config/templates/field.yaml", "mine.yaml"], {}, None),
        ("x.md:7", ["snakemake", "-n", "--configfile", "mine.yaml"], {}, None),
        ("x.md:12", ["snakemake", "--cores", "8", "--configfile", "yours.yaml"], {}, "needs your own data"),
    ]


@pytest.mark.parametrize("words, problem", [
    (["snakemake", "figures"], "no --cores"),
    (["snakemake", "--cores", "1", "--configfile", "missing.yaml"], "does not exist"),
    (["snakemake", "--profile", "profiles/slurm", "--cores", "1"], "--workflow-profile none"),
    (["snakemake", "--cores", "1", "no_such_target.txt"], "the dry run fails"),
])
def test_a_command_that_would_fail_is_reported(tmp_path, words, problem):
    copy = copy_repository(tmp_path / "repo")
    problems = problems_of(Command("x.md:1", words), copy, tmp_path / "placeholders")
    assert len(problems) == 1 and problem in problems[0], problems
