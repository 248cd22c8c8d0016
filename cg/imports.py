"""Reading the `imports:` of a graph or library file: every library file it brings in,
transitively, each read once; a missing file, a file that is not a library (CG131) and an
import cycle (CG131) are reported at the import that names them. Paths are relative to the
importing file (to the current directory for standard input)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from cg.document import load_file
from cg.errors import Diagnostic, LoadError, Pos
from cg.graph import topological_order, walk_cycle
from cg.schema_messages import quote

if TYPE_CHECKING:
    from cg.functions import Scope

_NO_DIR = ("-", "<stdin>", "<string>")  # text without a file: imports are relative to the current directory


def at(file: str, pos: Pos | None) -> str:
    return f"{file}:{pos.line}:{pos.col}" if pos else file


def is_library(data: Any) -> bool:
    """A file of functions only: it has `functions` and no nodes or outputs."""
    return isinstance(data, dict) and "functions" in data and "nodes" not in data and "outputs" not in data


def read_imports(scope: Scope) -> None:
    """Every file of the import closure, breadth first; missing files and non-libraries are errors."""
    todo = [scope.main]
    known: dict[str, str | None] = {os.path.realpath(scope.main.file): scope.main.file}  # None: failed
    while todo:
        doc = todo.pop(0)
        scope.files[doc.file] = doc
        edges = scope.imports.setdefault(doc.file, [])
        entries = doc.data.get("imports") if isinstance(doc.data, dict) else None
        for k, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, str) or not entry:
                continue  # the schema says what is wrong
            base = "" if doc.file in _NO_DIR else os.path.dirname(doc.file)
            path = os.path.normpath(os.path.join(base, entry))
            real = os.path.realpath(path)
            if real in known:
                if known[real] is not None:
                    edges.append((k, known[real] or ""))
                continue
            known[real] = None
            if not os.path.isfile(path):
                scope.error(doc, "CG131", f"cannot import {quote(entry)}: no such file ({quote(path, 80)})",
                            ("imports", k))
                continue
            try:
                lib = load_file(path)
            except LoadError as e:
                here = at(doc.file, doc.pos(("imports", k)))
                scope.diags += [Diagnostic(d.code, f"{d.message} (imported at {here})", d.file, d.pos, d.node)
                                for d in e.diagnostics]
                continue
            if not is_library(lib.data):
                message = (f"{quote(entry)} is not a library: a library file has `functions` and no nodes or "
                           "outputs (graphs cannot be imported)")
                scope.error(doc, "CG131", message, ("imports", k))
                continue
            known[real] = path
            edges.append((k, path))
            todo.append(lib)
    _import_cycles(scope)


def _import_cycles(scope: Scope) -> None:
    deps = {f: [imp for _, imp in edges] for f, edges in scope.imports.items()}
    _, left = topological_order(deps)
    done: set[str] = set()
    for file in left:
        if file in done:
            continue
        cycle = walk_cycle(file, deps, set(left))
        done.update(cycle)
        k = next(k for k, imp in scope.imports[cycle[0]] if imp == cycle[1])
        scope.error(scope.files[cycle[0]], "CG131", "import cycle: " + " -> ".join(cycle), ("imports", k))


