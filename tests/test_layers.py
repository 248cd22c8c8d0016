"""The pipeline's order of stages, enforced: no import cycles, no import against the order.

Standard library only (ast over cg/). Every import counts, including those inside functions and
under TYPE_CHECKING: a deferred import hides a cycle from Python, not from the design.

The order is data (STAGES, below): a module may import modules of its own stage or of a stage
listed before it, never after; a module's stage is its package (cg/graph/ir.py: graph) or, for
the modules directly in cg/, its own name. KNOWN_UPWARD and KNOWN_CYCLES, now empty, are where
an exception would be written down, with its reason: a new cycle or upward import fails, and so
does a listed one that no longer happens (delete it, so it cannot come back unseen).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top. A stage may import itself and every stage before it.
STAGES: list[tuple[str, ...]] = [
    ("errors", "codes", "limits", "gcpause", "printable"),  # leaves: nothing from cg
    ("files", "progress"),  # bounded reads and safe writes; the progress bar (rich, lazily)
    ("ops",),  # the op registry
    ("parse",),  # bytes -> document with positions (not `load`: that is the facade's cg.load())
    ("schema",),  # document -> schema diagnostics
    ("graph",),  # document -> immutable graph
    ("eval", "fmt"),  # graph -> numbers; canonical files
    ("check", "render"),  # gradient checks; every output format
    ("compile", "interop"),  # graph -> Python module; ONNX models in and out
    ("cli",),  # the command line
    ("cg", "__main__"),  # the facade
]
# Leaves import nothing from cg, not even each other.
LEAVES = set(STAGES[0])


# What today's tree does against the order (issue 11 removes them; this list only shrinks).
KNOWN_UPWARD: set[tuple[str, str]] = set()
KNOWN_CYCLES: list[set[str]] = []


def modules(root: Path, package: str = "cg") -> dict[str, Path]:
    """Module name -> file, for every .py under root (a package named `package`)."""
    found = {}
    for path in root.rglob("*.py"):
        parts = (package, *path.relative_to(root).with_suffix("").parts)
        found[".".join(parts).removesuffix(".__init__")] = path
    return found


def imports(mods: dict[str, Path], package: str = "cg") -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (resolved to the module file named)."""

    def target(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    deps: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            for name in names:
                if name == package or name.startswith(package + "."):
                    t = target(name)
                    if t is not None and t not in (m, package):
                        deps[m].add(t)
    return deps


def cycles(deps: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan's, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[set[str]] = []
    for start in sorted(deps):
        if start in index:
            continue
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        work = [(start, iter(sorted(deps[start])))]
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    scc = set()
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        scc.add(x)
                        if x == v:
                            break
                    if len(scc) > 1:
                        found.append(scc)
            elif w not in index:
                index[w] = low[w] = len(index)
                stack.append(w)
                on.add(w)
                work.append((w, iter(sorted(deps.get(w, ())))))
            elif w in on:
                low[v] = min(low[v], index[w])
    return found


def stage_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "cg"
    return parts[1]


def rank(stage: str) -> int:
    for k, names in enumerate(STAGES):
        if stage in names:
            return k
    raise AssertionError(f"stage {stage!r} is not in STAGES: place it in tests/test_layers.py")


def upward(deps: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Imports against the order: to a later stage, or from a leaf to anything in cg."""
    bad = set()
    for m, targets in deps.items():
        for t in targets:
            if stage_of(m) in LEAVES or rank(stage_of(t)) > rank(stage_of(m)):
                bad.add((m, t))
    return bad


def _as_text(items: Iterable[object]) -> str:
    return "\n  ".join(sorted(map(str, items))) or "(none)"


# ---- the real tree ------------------------------------------------------------------------------

DEPS = imports(modules(ROOT / "cg"))


def test_every_module_has_a_stage() -> None:
    for m in DEPS:
        rank(stage_of(m))


def test_no_new_import_cycle() -> None:
    found = cycles(DEPS)
    new = [c for c in found if c not in KNOWN_CYCLES]
    assert not new, "import cycles:\n  " + _as_text(" <-> ".join(sorted(c)) for c in new)
    gone = [c for c in KNOWN_CYCLES if c not in found]
    assert not gone, "no longer cycles: delete from KNOWN_CYCLES\n  " + _as_text(" ".join(sorted(c)) for c in gone)


def test_no_new_import_against_the_order_of_stages() -> None:
    found = upward(DEPS)
    new = found - KNOWN_UPWARD
    assert not new, "imports against the order of stages (tests/test_layers.py STAGES):\n  " + _as_text(
        f"{m} ({stage_of(m)}) imports {t} ({stage_of(t)})" for m, t in new)


def test_the_known_upward_imports_still_happen() -> None:
    real = {pair for pair in KNOWN_UPWARD if rank(stage_of(pair[1])) > rank(stage_of(pair[0]))}
    gone = real - upward(DEPS)
    assert not gone, "no longer imported against the order: delete from KNOWN_UPWARD\n  " + _as_text(gone)


def test_package_faces_are_lazy() -> None:
    """A package's __init__ imports none of numpy, jsonschema, rich at import time (start-up)."""
    for m, path in modules(ROOT / "cg").items():
        if path.name != "__init__.py" or m == "cg":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        heavy = {"numpy", "jsonschema", "rich"}
        for node in top:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            assert not any(n.split(".")[0] in heavy for n in names), f"{path}: imports {names} at import time"


# ---- the checker itself, on synthetic trees -----------------------------------------------------


def tree(tmp_path: Path, files: dict[str, str]) -> dict[str, set[str]]:
    for name, text in files.items():
        path = tmp_path / "cg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return imports(modules(tmp_path / "cg"))


def test_a_cycle_is_found_even_through_a_deferred_import(tmp_path: Path) -> None:
    deps = tree(tmp_path, {
        "__init__.py": "",
        "graph/__init__.py": "",
        "graph/ir.py": "def f():\n    from cg.graph.build import g\n",
        "graph/build.py": "from cg.graph.ir import f\n",
        "eval/__init__.py": "",
        "eval/run.py": "from cg.graph import ir\n",
    })
    assert cycles(deps) == [{"cg.graph.ir", "cg.graph.build"}]


def test_a_type_checking_import_is_an_import(tmp_path: Path) -> None:
    deps = tree(tmp_path, {
        "__init__.py": "",
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cg.b import x\n",
        "b.py": "import cg.a\n",
    })
    assert cycles(deps) == [{"cg.a", "cg.b"}]


@pytest.mark.parametrize(("importer", "imported", "against"), [
    ("eval/run.py", "cg.render.table", True),  # evaluation must not know how results are shown
    ("render/table.py", "cg.eval.run", False),
    ("graph/ir.py", "cg.ops", False),
    ("ops/base.py", "cg.graph.ir", True),
    ("errors.py", "cg.limits", True),  # leaves import nothing from cg
    ("cli/run.py", "cg.compile.emit", False),
])
def test_an_import_against_the_order_is_found(tmp_path: Path, importer: str, imported: str, against: bool) -> None:
    files = {"__init__.py": "", importer: f"import {imported}\n"}
    for name in (importer, imported.removeprefix("cg.").replace(".", "/") + ".py"):
        parts = name.split("/")
        for k in range(1, len(parts)):
            files.setdefault("/".join(parts[:k]) + "/__init__.py", "")
        files.setdefault(name, "")
    deps = tree(tmp_path, files)
    assert bool(upward(deps)) is against


def test_no_package_shadows_the_facade() -> None:
    """Importing cg.X.y sets the attribute cg.X to the package: a stage package named like a facade
    function (load, run...) would replace that function for everyone once any of its modules loads.
    cg.check is both: the facade keeps its function (cg/__init__.py, _Facade)."""
    import importlib

    import cg

    for m in DEPS:
        if m != "cg.__main__":  # runs the CLI
            importlib.import_module(m)
    for name in ("check", "load", "loads", "run", "value_and_grad"):
        assert callable(getattr(cg, name)), f"cg.{name} is {getattr(cg, name)!r}"


def test_the_documented_import_paths_still_work() -> None:
    """Moved modules keep their public names where the README shows them (package faces)."""
    from cg.compile import CompileError, compile_module, compile_source
    from cg.graph import Graph, build
    from cg.schema import graph_schema, result_schema, validate

    assert all(map(callable, (compile_module, compile_source, build, graph_schema, result_schema, validate)))
    assert issubclass(CompileError, Exception) and isinstance(Graph, type)


def test_the_readme_op_table_lists_every_registered_op() -> None:
    """Adding an op touches one place, and the README's table must follow it (issue 11, part 5)."""
    import re

    from cg.ops import REGISTRY

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| op | inputs | attributes | notes |"):]
    table = table[: table.index("\n\n")]
    cells = [re.match(r"\| `([^`]*)`", row) for row in table.splitlines()[2:]]
    assert all(cells), "every row of the op table starts with its ops in backquotes"
    listed = {name for cell in cells if cell for name in cell.group(1).split()}
    ops = set(REGISTRY)
    assert listed == ops, f"README op table: missing {ops - listed}, unknown {listed - ops}"
