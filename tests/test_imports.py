"""The package's import graph has no cycle: no module needs, even inside a function, a module that needs it.

The graph is read from the source (AST), not from ``sys.modules``: every ``import`` and ``from ... import``
of a discoverydiff module, at the top of a module and inside functions alike (a function-level import
only hides a cycle until the function runs). Relative imports are resolved against the importing
module's package. ``from PKG import NAME`` is an edge to ``PKG.NAME`` when that is a module, else to
``PKG``'s ``__init__``, whose own imports (its re-exports) are edges to the submodules they name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "discoverydiff"
ROOT = Path(__file__).resolve().parents[1]


def module_files(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package (``PKG`` names its ``__init__``)."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` written in ``module``."""
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``module`` imports anywhere in its source (each a key of ``modules``)."""
    is_package = path.name == "__init__.py"
    found = set()

    def add(name: str) -> None:
        # `import a.b.c` needs a.b.c; the closest module of the package that the name starts with
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)

    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, is_package, node.level, node.module)
            if not (source == PACKAGE or source.startswith(PACKAGE + ".")):
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                add(submodule if submodule in modules else source)
    return found


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    modules = module_files(root, package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan), each sorted, as a list."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 30 and graph["discoverydiff.stats"]  # the walk found the package and its re-exports
    assert cycles(graph) == []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize("files, expected", [
    # a function-level import closes the circle as much as a top-level one
    ({"a.py": "from . import b\n", "b.py": "def f():\n    from .a import g\n"},
     [["discoverydiff.a", "discoverydiff.b"]]),
    # through a package __init__ that re-exports the importer
    ({"sub/__init__.py": "from .x import X\n", "sub/x.py": "X = 1\n", "sub/y.py": "from ..sub import X\n",
      "c.py": "import discoverydiff.sub.y\n", "sub/z.py": "def f():\n    from discoverydiff import c\n"},
     []),
    ({"sub/__init__.py": "from .y import Y\n", "sub/y.py": "def f():\n    from ..sub import Y\n"},
     [["discoverydiff.sub", "discoverydiff.sub.y"]]),
    # `from ..x import name` two levels up, and an absolute `import a.b` of a name inside a module
    ({"p/q/m.py": "from ...n import k\n", "n.py": "import discoverydiff.p.q.m.func\n"},
     [["discoverydiff.n", "discoverydiff.p.q.m"]]),
    # a chain is no cycle; nor is a module importing another package's names
    ({"a.py": "from .b import x\nimport numpy\n", "b.py": "from .c import y\n", "c.py": "import os\n"}, []),
])
def test_the_walk_finds_cycles_at_any_depth(tmp_path, files, expected):
    _write(tmp_path / PACKAGE, {"__init__.py": "", **files})
    assert cycles(import_graph(tmp_path)) == expected
